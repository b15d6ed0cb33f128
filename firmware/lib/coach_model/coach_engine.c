/* coach_engine: TFLM-exact int8 MLP kernel, input quantizer, self-test.
 * See coach_engine.h for the contract; the CMB1 blob loader is coach_model_load.c. */
#include "coach_engine.h"

#include <math.h>
#include <string.h>

#include "coach_engine_private.h"

#if defined(__x86_64__) && defined(__SSE2__) && !defined(COACH_ENGINE_NO_SIMD)
#define COACH_ENGINE_SSE2 1 /* x86-64 hosts (SIL, host library): see coach_engine_sse2.h */
#include "coach_engine_sse2.h"
#else
#define COACH_ENGINE_SSE2 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define COACH_NOINLINE __attribute__((noinline))
#define COACH_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define COACH_NOINLINE
#define COACH_ALWAYS_INLINE inline
#endif

/* ---------------------------------------------------------------- integer kernel */

/* The right shifts below rely on >> of a negative value being arithmetic (floor), which
   C leaves implementation-defined; every compiler the firmware targets does so, and a
   compiler that does not fails here (a C99 compile-time check: negative array size). */
typedef char coach_arithmetic_right_shift[(((int64_t)-3 >> 1) == -2 && ((int32_t)-3 >> 1) == -2) ? 1 : -1];

/* TFLM MultiplyByQuantizedMultiplier (double rounding build), then the output zero point and
   the fused activation clamp, in fewer steps than the reference and bit-exact with it:
   * SaturatingRoundingDoublingHighMul(x, M): the reference adds 2^30 (xM >= 0) or 1 - 2^30
     (xM < 0) and divides by 2^31 truncating toward zero. For xM < 0, trunc(v / 2^31) =
     floor((v + 2^31 - 1) / 2^31) with v + 2^31 - 1 = xM + 2^30, so both signs give
     y = floor((xM + 2^30) / 2^31) = floor((x*2M + 2^31) / 2^32): the high word of x * 2M (2M
     fits an unsigned 32-bit word: one mul, one mulhsu on rv32) plus the top bit of the low
     word. The reference saturates x == M == INT32_MIN; the loader only accepts M >= 0.
   * RoundingDivideByPOT(y, r), r = -shift >= 1, rounds half away from zero:
     floor((y + 2^(r-1) - [y < 0]) / 2^r). The loader accepts M = 0 or M >= 2^30, so y < 0
     exactly when x < 0, except x * M = -2^30, where y = 0 and both forms give 0; the
     rounding term is therefore known from the accumulator's sign before the multiply.
     half = (2^r - [x < 0]) / 2 (truncated) is that term for r >= 1 and 0 for r = 0
     (shift 0: no rounding), so shifts <= 0 share one path with no branch on r.
   The loader also bounds |bias| + n_in * 2^14 + 2^(r-1) <= INT32_MAX, so y + half cannot
   overflow. A shift > 0 shifts left (wrapping, no signed-overflow UB) and needs no rounding.
   quantization/csrc/requant_check.c tests this function against the reference formulas over
   every shift and edge-case multipliers and accumulators, on the host and on rv32. */
static COACH_ALWAYS_INLINE int32_t multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift) {
  int32_t half = 0;
  int right = 0;
  if (shift <= 0) {
    right = (int)-shift;
    half = (int32_t)((((uint32_t)1 << right) + (uint32_t)(x >> 31)) >> 1);
  } else {
    x = (int32_t)((uint32_t)x << shift);
  }
  const int64_t p = (int64_t)x * (int64_t)((uint32_t)multiplier << 1);
  const int32_t y = (int32_t)(uint32_t)((uint64_t)p >> 32) + (int32_t)((uint32_t)p >> 31);
  return (y + half) >> right;
}

/* One output: requantize, add the output zero point, clamp to the fused activation. Always
   inlined: a full pass of eight rows requantizes its sums straight from the registers. */
static COACH_ALWAYS_INLINE int8_t requantize_one(int32_t acc, int32_t multiplier, int32_t shift, int32_t zp,
                                                 int32_t lo, int32_t hi) {
  int32_t x = multiply_by_quantized_multiplier(acc, multiplier, shift) + zp;
  if (x < lo) x = lo;
  if (x > hi) x = hi;
  return (int8_t)x;
}

/* Rows o..o+rows-1 from sums in memory: the lone block and the tail rows. Not inlined, so
   that the pass keeps its registers (-Os would otherwise spill the pass's pointers). */
static COACH_NOINLINE void requantize(const coach_layer_t *l, int o, int rows, const int32_t *acc, int8_t *out) {
  const int32_t *multiplier = l->multiplier + o, *shift = l->shift + o;
  const int32_t out_zp = l->out_zp, act_min = l->act_min, act_max = l->act_max;
  int8_t *const end = out + rows;
  do {
    int32_t x = multiply_by_quantized_multiplier(*acc++, *multiplier++, *shift++) + out_zp;
    if (x < act_min) x = act_min;
    if (x > act_max) x = act_max;
    *out++ = (int8_t)x;
  } while (out != end);
}

/* The input zero point is folded into the bias at codegen time, so the inner loops are bare
   dot products. Weights are stored in blocks of four output rows interleaved column by
   column (docs/model-format.md). Two consecutive blocks go through one pass: one set of
   input loads feeds eight accumulators from two weight pointers, four columns per trip, and
   the eight sums are requantized where they are (eight inlined copies: about 0.6 KB of rv32
   code for about 1,200 fewer rv32 instructions per inference). A lone last block
   (n_out % 8 >= 4) runs the same pass with both pointers on it and requantizes four rows.
   The last n_out % 4 rows are row-major; they share their input loads too (up to three row
   pointers, four columns per trip; a missing row repeats the last real one and is not
   stored). The four-column loops are do-while inside an if because -Os does not rotate
   a while loop; the last n_in % 4 columns go one by one. On x86-64 hosts the four-column
   loop of the block passes is coach_engine_sse2.h's (same sums, same layout). */
static void fully_connected(const coach_layer_t *l, const int8_t *in, int8_t *out) {
  const int n_in = l->n_in;
  const int n_out = l->n_out;
  const int8_t *w = l->weights;
  const int8_t *const end = in + n_in;
  /* Stop the four-column loop at the last multiple of four: comparing x + 4 with end would
     form a pointer past one-past-the-end for other widths, which C leaves undefined. */
  const int8_t *const quads_end = in + (n_in & ~3);
#if COACH_ENGINE_SSE2
  const int quads = n_in / 4;
  __m128i pairs[COACH_MAX_WIDTH / 2];
  coach_sse2_pairs(in, 2 * quads, pairs);
#endif
  for (int o = 0; o < n_out;) {
    const int left = n_out - o;
    const int rows = left >= 8 ? 8 : left >= 4 ? 4 : left;
    int32_t acc[4]; /* sums of a lone block or the tail rows */
    const int8_t *x = in;
    if (rows >= 4) {
      const int second = rows == 8 ? 4 : 0; /* the second block's first row, or the first again */
      const int8_t *v = w + second * n_in;
      int32_t a0 = l->bias[o], a1 = l->bias[o + 1], a2 = l->bias[o + 2], a3 = l->bias[o + 3];
      int32_t a4 = l->bias[o + second], a5 = l->bias[o + second + 1];
      int32_t a6 = l->bias[o + second + 2], a7 = l->bias[o + second + 3];
#if COACH_ENGINE_SSE2
      if (x != quads_end) {
        int32_t s[8];
        coach_sse2_two_blocks(w, v, pairs, quads, s);
        a0 += s[0], a1 += s[1], a2 += s[2], a3 += s[3], a4 += s[4], a5 += s[5], a6 += s[6], a7 += s[7];
        x = quads_end;
        w += 16 * quads;
        v += 16 * quads;
      }
#else
      if (x != quads_end) {
        do { /* four columns per trip: a quarter of the loop overhead and input loads */
          const int32_t x0 = x[0], x1 = x[1], x2 = x[2], x3 = x[3];
          a0 += x0 * w[0] + x1 * w[4] + x2 * w[8] + x3 * w[12];
          a1 += x0 * w[1] + x1 * w[5] + x2 * w[9] + x3 * w[13];
          a2 += x0 * w[2] + x1 * w[6] + x2 * w[10] + x3 * w[14];
          a3 += x0 * w[3] + x1 * w[7] + x2 * w[11] + x3 * w[15];
          a4 += x0 * v[0] + x1 * v[4] + x2 * v[8] + x3 * v[12];
          a5 += x0 * v[1] + x1 * v[5] + x2 * v[9] + x3 * v[13];
          a6 += x0 * v[2] + x1 * v[6] + x2 * v[10] + x3 * v[14];
          a7 += x0 * v[3] + x1 * v[7] + x2 * v[11] + x3 * v[15];
          x += 4;
          w += 16;
          v += 16;
        } while (x != quads_end);
      }
#endif
      while (x != end) { /* the last n_in % 4 columns */
        const int32_t x0 = *x++;
        a0 += x0 * w[0];
        a1 += x0 * w[1];
        a2 += x0 * w[2];
        a3 += x0 * w[3];
        a4 += x0 * v[0];
        a5 += x0 * v[1];
        a6 += x0 * v[2];
        a7 += x0 * v[3];
        w += 4;
        v += 4;
      }
      if (second != 0) {
        int8_t *const dst = out + o;
        const int32_t *const mul = l->multiplier + o, *const sh = l->shift + o;
        const int32_t zp = l->out_zp, lo = l->act_min, hi = l->act_max;
        /* a full pass: straight from the registers, no stores and loads of the sums */
        dst[0] = requantize_one(a0, mul[0], sh[0], zp, lo, hi);
        dst[1] = requantize_one(a1, mul[1], sh[1], zp, lo, hi);
        dst[2] = requantize_one(a2, mul[2], sh[2], zp, lo, hi);
        dst[3] = requantize_one(a3, mul[3], sh[3], zp, lo, hi);
        dst[4] = requantize_one(a4, mul[4], sh[4], zp, lo, hi);
        dst[5] = requantize_one(a5, mul[5], sh[5], zp, lo, hi);
        dst[6] = requantize_one(a6, mul[6], sh[6], zp, lo, hi);
        dst[7] = requantize_one(a7, mul[7], sh[7], zp, lo, hi);
        w = v; /* past both blocks */
        o += 8;
        continue;
      }
      acc[0] = a0; /* a lone block: a4..a7 repeat these rows */
      acc[1] = a1;
      acc[2] = a2;
      acc[3] = a3;
    } else {
      const int8_t *w0 = w;
      const int8_t *w1 = rows > 1 ? w0 + n_in : w0;
      const int8_t *w2 = rows > 2 ? w1 + n_in : w1;
      int32_t a0 = l->bias[o], a1 = l->bias[o + rows / 2], a2 = l->bias[o + rows - 1];
      if (x != quads_end) {
        do { /* four columns per trip */
          const int32_t x0 = x[0], x1 = x[1], x2 = x[2], x3 = x[3];
          a0 += x0 * w0[0] + x1 * w0[1] + x2 * w0[2] + x3 * w0[3];
          a1 += x0 * w1[0] + x1 * w1[1] + x2 * w1[2] + x3 * w1[3];
          a2 += x0 * w2[0] + x1 * w2[1] + x2 * w2[2] + x3 * w2[3];
          x += 4;
          w0 += 4;
          w1 += 4;
          w2 += 4;
        } while (x != quads_end);
      }
      while (x != end) {
        const int32_t x0 = *x++;
        a0 += x0 * *w0++;
        a1 += x0 * *w1++;
        a2 += x0 * *w2++;
      }
      acc[0] = a0;
      acc[1] = a1;
      acc[2] = a2;
    }
    requantize(l, o, rows, acc, out + o);
    o += rows;
  }
}

coach_status_t coach_model_invoke(const coach_model_t *m, const int8_t *in, int8_t *out) {
  int8_t buf[2][COACH_MAX_WIDTH];
  const int8_t *src = in;
  ENSURE(m != NULL && in != NULL && out != NULL, COACH_ERR_UNSUPPORTED);
  ENSURE(m->n_layers >= 1 && m->n_layers <= COACH_MAX_LAYERS, COACH_ERR_UNSUPPORTED);
  for (int k = 0; k < m->n_layers; ++k) {
    const int last = k == m->n_layers - 1;
    int8_t *dst = (last && m->lut == NULL) ? out : buf[k & 1];
    fully_connected(&m->layers[k], src, dst);
    src = dst;
  }
  if (m->lut != NULL) {
    for (int o = 0; o < m->n_outputs; ++o) {
      out[o] = m->lut[(uint8_t)(src[o] + 128)];
    }
  }
  return COACH_OK;
}

/* ---------------------------------------------------------------- float boundary */

coach_status_t coach_model_quantize_input(const coach_model_t *m, const float *telemetry, int8_t *in,
                                          uint8_t *clamped) {
  uint8_t any_clamped = 0;
  ENSURE(m != NULL && telemetry != NULL && in != NULL, COACH_ERR_UNSUPPORTED);
  for (int i = 0; i < m->n_inputs; ++i) {
    ENSURE(isfinite(telemetry[i]), COACH_ERR_NONFINITE);
  }
  for (int i = 0; i < m->n_inputs; ++i) {
    float x = telemetry[i];
    if (x < m->feature_min[i]) {
      x = m->feature_min[i];
      any_clamped = 1;
    } else if (x > m->feature_max[i]) {
      x = m->feature_max[i];
      any_clamped = 1;
    }
    const float normalized = (x - m->norm_offset[i]) / m->norm_scale[i];
    /* TFLM AffineQuantize: round(x / scale) half away from zero, + zero point, clamp */
    float r = roundf(normalized / m->input_scale);
    if (r < -512.0f) r = -512.0f; /* keeps the int conversion defined; saturates anyway */
    if (r > 512.0f) r = 512.0f;
    int32_t q = (int32_t)r + m->input_zp;
    if (q < -128) q = -128;
    if (q > 127) q = 127;
    in[i] = (int8_t)q;
  }
  if (clamped != NULL) {
    *clamped = any_clamped;
  }
  return COACH_OK;
}

void coach_model_dequantize_output(const coach_model_t *m, const int8_t *out, float *actions01) {
  for (int o = 0; o < m->n_outputs; ++o) {
    float y = (float)((int32_t)out[o] - m->output_zp) * m->output_scale;
    if (!(y >= 0.0f)) y = 0.0f; /* also maps a NaN from a broken scale to 0 */
    if (y > 1.0f) y = 1.0f;
    actions01[o] = y;
  }
}

coach_status_t coach_model_selftest(const coach_model_t *m) {
  int8_t out[COACH_MAX_IO];
  ENSURE(m != NULL, COACH_ERR_UNSUPPORTED);
  ENSURE(m->n_golden >= 1, COACH_ERR_SELFTEST);
  for (int g = 0; g < m->n_golden; ++g) {
    RETURN_IF_ERROR(coach_model_invoke(m, m->golden_in + (size_t)g * m->n_inputs, out));
    ENSURE(memcmp(out, m->golden_out + (size_t)g * m->n_outputs, m->n_outputs) == 0, COACH_ERR_SELFTEST);
  }
  return COACH_OK;
}

const uint8_t *coach_model_sha256(const coach_model_t *m) { return m->sha256; }

const char *coach_model_id(const coach_model_t *m) { return m->id; }
