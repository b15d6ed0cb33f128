/* rv32imc instruction counter for the engine, run under QEMU with -icount shift=0.
 * With -icount, QEMU's instret CSR counts guest instructions exactly. Prints the counts
 * through semihosting and returns 0 when the golden self-test passed. */
#include <stdio.h>

#include "coach_engine.h"

static inline uint32_t instret(void) {
  uint32_t v;
  __asm__ volatile("csrr %0, instret" : "=r"(v));
  return v;
}

int main(void) {
  const coach_model_t *m = &coach_default_model;
  int8_t in[COACH_MAX_IO], out[COACH_MAX_IO];
  float tel[COACH_MAX_IO], act[COACH_MAX_IO];
  uint8_t clamped = 0;
  uint32_t t0, t1, empty, best_inv = 0xFFFFFFFFu, best_q = 0xFFFFFFFFu;
  for (int i = 0; i < m->n_inputs; ++i) tel[i] = 0.5f * (m->feature_min[i] + m->feature_max[i]) + 0.1f * (float)i;
  t0 = instret();
  t1 = instret();
  empty = t1 - t0; /* cost of reading the counter itself */
  for (int g = 0; g < m->n_golden; ++g) {
    t0 = instret();
    coach_status_t st = coach_model_invoke(m, m->golden_in + g * m->n_inputs, out);
    t1 = instret();
    if (st != COACH_OK) return 2;
    if (t1 - t0 - empty < best_inv) best_inv = t1 - t0 - empty;
  }
  for (int r = 0; r < 4; ++r) {
    t0 = instret();
    coach_status_t st = coach_model_quantize_input(m, tel, in, &clamped);
    t1 = instret();
    if (st != COACH_OK) return 3;
    if (t1 - t0 - empty < best_q) best_q = t1 - t0 - empty;
  }
  coach_model_dequantize_output(m, out, act);
  printf("INVOKE_INSTRUCTIONS %lu\n", (unsigned long)best_inv);
  printf("QUANTIZE_INSTRUCTIONS %lu\n", (unsigned long)best_q);
  return coach_model_selftest(m) == COACH_OK ? 0 : 1;
}
