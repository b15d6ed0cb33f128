/* Batch entry points over coach_engine for host tests (ctypes) and benchmarks.
 * Built together with the engine sources (cbuild.ENGINE_SOURCES) and a generated coach_model_data.c. */
#include <string.h>

#include "coach_engine.h"

/* A received blob is copied here, 4-byte aligned, as the device's slot memory would be. */
static uint32_t g_blob_words[16384];
static coach_model_t g_loaded;
static int g_have_loaded;

static const coach_model_t *pick(int which) { return which == 0 ? &coach_default_model : &g_loaded; }

int shim_load(const uint8_t *blob, size_t len) {
  g_have_loaded = 0;
  if (len > sizeof g_blob_words) return -1;
  memcpy(g_blob_words, blob, len);
  coach_status_t st = coach_model_load((const uint8_t *)g_blob_words, len, &g_loaded);
  g_have_loaded = st == COACH_OK;
  return (int)st;
}

/* Loads from an arbitrary (possibly misaligned) address, to test the alignment check. */
int shim_load_at_offset(const uint8_t *blob, size_t len, size_t offset) {
  coach_model_t m;
  if (len + offset > sizeof g_blob_words) return -1;
  memcpy((uint8_t *)g_blob_words + offset, blob, len);
  return (int)coach_model_load((const uint8_t *)g_blob_words + offset, len, &m);
}

int shim_invoke_batch(int which, const int8_t *in, int8_t *out, size_t n) {
  const coach_model_t *m = pick(which);
  if (which != 0 && !g_have_loaded) return -1;
  for (size_t i = 0; i < n; ++i) {
    coach_status_t st = coach_model_invoke(m, in + i * m->n_inputs, out + i * m->n_outputs);
    if (st != COACH_OK) return (int)st;
  }
  return 0;
}

/* status[i] gets each vector's coach_status_t; out rows of failing vectors stay untouched. */
void shim_quantize_batch(int which, const float *tel, int8_t *out, uint8_t *clamped, int32_t *status, size_t n) {
  const coach_model_t *m = pick(which);
  for (size_t i = 0; i < n; ++i) {
    status[i] = (int32_t)coach_model_quantize_input(m, tel + i * m->n_inputs, out + i * m->n_inputs, &clamped[i]);
  }
}

void shim_dequantize_batch(int which, const int8_t *out, float *actions, size_t n) {
  const coach_model_t *m = pick(which);
  for (size_t i = 0; i < n; ++i) coach_model_dequantize_output(m, out + i * m->n_outputs, actions + i * m->n_outputs);
}

int shim_selftest(int which) { return (int)coach_model_selftest(pick(which)); }

void shim_info(int which, uint8_t sha[32], char id[16]) {
  memcpy(sha, coach_model_sha256(pick(which)), 32);
  memcpy(id, coach_model_id(pick(which)), 16);
}

size_t shim_layers(int which) { return pick(which)->n_layers; }
