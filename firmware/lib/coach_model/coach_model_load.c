/* coach_model_load: the CMB1 blob loader. It accepts only blobs whose integer arithmetic stays
 * inside int32 in coach_engine.c. See docs/model-format.md for the layout. */
#include <math.h>
#include <string.h>

#include "coach_engine.h"
#include "coach_engine_private.h"
#include "feature_schema.h" /* coach_core: SCHEMA_HASH32, SCHEMA_N_FEATURES */
#include "sha256.h"         /* coach_core: the firmware's one SHA-256 */

static uint32_t rd_u32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint16_t rd_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static float rd_f32(const uint8_t *p) {
  const uint32_t u = rd_u32(p);
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}
static size_t pad4(size_t n) { return (n + 3u) & ~(size_t)3u; }

static uint32_t crc32_ieee(const uint8_t *p, size_t n) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int b = 0; b < 8; ++b) {
      crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
  }
  return ~crc;
}

enum { HDR_SIZE = 64, LAYER_DESC_SIZE = 16 };

static int is_little_endian(void) {
  const uint16_t one = 1;
  uint8_t first;
  memcpy(&first, &one, 1);
  return first == 1;
}

/* Every accepted blob keeps the integer arithmetic inside int32: the dot product adds at most
   n_in * 128 * 128 to the bias, and a left shift must not push that sum out of range, so
   |bias| + n_in * 2^14 <= INT32_MAX >> left; with a right shift r,
   multiply_by_quantized_multiplier() adds up to 2^(r-1) to a value no larger than the sum in
   magnitude, so |bias| + n_in * 2^14 + 2^(r-1) <= INT32_MAX.
   TFLM's QuantizeMultiplier yields 0 or a multiplier in [2^30, 2^31), and shifts in [-31, 30]. */
static coach_status_t check_layer(const coach_layer_t *l) {
  ENSURE(l->n_in >= 1 && l->n_in <= COACH_MAX_WIDTH, COACH_ERR_UNSUPPORTED);
  ENSURE(l->n_out >= 1 && l->n_out <= COACH_MAX_WIDTH, COACH_ERR_UNSUPPORTED);
  ENSURE(l->out_zp >= -128 && l->out_zp <= 127, COACH_ERR_BAD_BLOB);
  ENSURE(l->act_min >= -128 && l->act_min <= l->act_max && l->act_max <= 127, COACH_ERR_BAD_BLOB);
  const int64_t dot_max = (int64_t)l->n_in * 128 * 128;
  for (int o = 0; o < l->n_out; ++o) {
    const int32_t mul = l->multiplier[o];
    const int32_t shift = l->shift[o];
    ENSURE(mul == 0 || mul >= ((int32_t)1 << 30), COACH_ERR_BAD_BLOB);
    ENSURE(shift >= -31 && shift <= 30, COACH_ERR_BAD_BLOB);
    const int64_t bias = l->bias[o];
    const int64_t limit = shift > 0 ? (int64_t)INT32_MAX >> shift
                                    : (int64_t)INT32_MAX - (shift < 0 ? (int64_t)1 << (-shift - 1) : 0);
    ENSURE((bias < 0 ? -bias : bias) + dot_max <= limit, COACH_ERR_BAD_BLOB);
  }
  return COACH_OK;
}

static int finite_positive(float v) { return isfinite(v) && v > 0.0f; }

coach_status_t coach_model_load(const uint8_t *blob, size_t len, coach_model_t *m) {
  ENSURE(blob != NULL && m != NULL, COACH_ERR_BAD_BLOB);
  ENSURE(is_little_endian(), COACH_ERR_UNSUPPORTED);
  ENSURE(((uintptr_t)blob & 3u) == 0, COACH_ERR_BAD_BLOB);
  ENSURE(len >= HDR_SIZE && memcmp(blob, "CMB1", 4) == 0, COACH_ERR_BAD_BLOB);
  ENSURE(rd_u32(blob + 4) == len, COACH_ERR_BAD_BLOB);
  ENSURE(rd_u32(blob + 60) == crc32_ieee(blob + HDR_SIZE, len - HDR_SIZE), COACH_ERR_BAD_BLOB);

  coach_model_t t;
  memset(&t, 0, sizeof t);
  t.engine_version = rd_u32(blob + 8);
  ENSURE(t.engine_version == COACH_ENGINE_VERSION, COACH_ERR_UNSUPPORTED);
  t.schema_hash32 = rd_u32(blob + 12);
  ENSURE(t.schema_hash32 == SCHEMA_HASH32, COACH_ERR_SCHEMA);
  t.n_inputs = rd_u16(blob + 16);
  t.n_outputs = rd_u16(blob + 18);
  t.n_layers = rd_u16(blob + 20);
  t.n_golden = rd_u16(blob + 22);
  t.head = rd_u32(blob + 24);
  t.input_scale = rd_f32(blob + 28);
  t.input_zp = (int32_t)rd_u32(blob + 32);
  t.output_scale = rd_f32(blob + 36);
  t.output_zp = (int32_t)rd_u32(blob + 40);
  memcpy(t.id, blob + 44, COACH_MODEL_ID_LEN);
  ENSURE(memchr(t.id, 0, COACH_MODEL_ID_LEN) != NULL, COACH_ERR_BAD_BLOB);

  ENSURE(t.n_inputs == SCHEMA_N_FEATURES && t.n_outputs == SCHEMA_N_ACTIONS, COACH_ERR_SCHEMA);
  ENSURE(t.n_layers >= 1 && t.n_layers <= COACH_MAX_LAYERS, COACH_ERR_UNSUPPORTED);
  ENSURE(t.head <= COACH_HEAD_TANH, COACH_ERR_UNSUPPORTED);
  ENSURE(t.n_golden >= 1 && t.n_golden <= COACH_MAX_GOLDEN, COACH_ERR_BAD_BLOB);
  ENSURE(finite_positive(t.input_scale) && finite_positive(t.output_scale), COACH_ERR_BAD_BLOB);
  ENSURE(t.input_zp >= -128 && t.input_zp <= 127, COACH_ERR_BAD_BLOB);
  ENSURE(t.output_zp >= -128 && t.output_zp <= 127, COACH_ERR_BAD_BLOB);

  /* Every count is bounded above, so these sums cannot overflow size_t. */
  size_t off = HDR_SIZE;
  const uint8_t *desc = blob + off;
  off += (size_t)t.n_layers * LAYER_DESC_SIZE;
  ENSURE(off <= len, COACH_ERR_BAD_BLOB);
  const size_t fsz = (size_t)t.n_inputs * sizeof(float);
  ENSURE(off + 4 * fsz <= len, COACH_ERR_BAD_BLOB);
  t.feature_min = (const float *)(const void *)(blob + off);
  t.feature_max = (const float *)(const void *)(blob + off + fsz);
  t.norm_offset = (const float *)(const void *)(blob + off + 2 * fsz);
  t.norm_scale = (const float *)(const void *)(blob + off + 3 * fsz);
  off += 4 * fsz;
  for (int i = 0; i < t.n_inputs; ++i) {
    ENSURE(isfinite(t.feature_min[i]) && isfinite(t.feature_max[i]) && t.feature_min[i] < t.feature_max[i],
           COACH_ERR_BAD_BLOB);
    ENSURE(isfinite(t.norm_offset[i]) && finite_positive(t.norm_scale[i]), COACH_ERR_BAD_BLOB);
  }

  uint16_t width = t.n_inputs;
  for (int k = 0; k < t.n_layers; ++k) {
    coach_layer_t *l = &t.layers[k];
    const uint8_t *d = desc + (size_t)k * LAYER_DESC_SIZE;
    l->n_in = rd_u16(d);
    l->n_out = rd_u16(d + 2);
    l->out_zp = (int32_t)rd_u32(d + 4);
    l->act_min = (int32_t)rd_u32(d + 8);
    l->act_max = (int32_t)rd_u32(d + 12);
    ENSURE(l->n_in == width, COACH_ERR_BAD_BLOB);
    ENSURE(l->n_out >= 1 && l->n_out <= COACH_MAX_WIDTH, COACH_ERR_UNSUPPORTED);
    const size_t vec = (size_t)l->n_out * sizeof(int32_t);
    const size_t wsz = pad4((size_t)l->n_out * l->n_in);
    ENSURE(off + 3 * vec + wsz <= len, COACH_ERR_BAD_BLOB);
    l->bias = (const int32_t *)(const void *)(blob + off);
    l->multiplier = (const int32_t *)(const void *)(blob + off + vec);
    l->shift = (const int32_t *)(const void *)(blob + off + 2 * vec);
    l->weights = (const int8_t *)(blob + off + 3 * vec);
    off += 3 * vec + wsz;
    RETURN_IF_ERROR(check_layer(l));
    width = l->n_out;
  }
  ENSURE(width == t.n_outputs, COACH_ERR_BAD_BLOB);
  if (t.head != COACH_HEAD_NONE) {
    ENSURE(off + 256 <= len, COACH_ERR_BAD_BLOB);
    t.lut = (const int8_t *)(blob + off);
    off += 256;
  }
  const size_t gin = pad4((size_t)t.n_golden * t.n_inputs);
  const size_t gout = pad4((size_t)t.n_golden * t.n_outputs);
  ENSURE(off + gin + gout == len, COACH_ERR_BAD_BLOB);
  t.golden_in = (const int8_t *)(blob + off);
  t.golden_out = (const int8_t *)(blob + off + gin);

  coach_sha256(blob, len, t.sha256);
  *m = t;
  return COACH_OK;
}
