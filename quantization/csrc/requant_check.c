/* The engine's requantization against TFLM's reference formulas, over its whole accepted
 * parameter space: every shift the loader accepts ([-31, 30]), multipliers 0, 2^30, 2^30 + 1,
 * 2^31 - 1 and pseudo-random ones in [2^30, 2^31), and accumulators at and near the loader's
 * bound for that shift, near zero (every value in [-4096, 4096], where the rounding ties
 * are), and pseudo-random in between. Built with coach_engine.c included, so it tests the
 * very function the kernel calls, on the host and (fewer cases) on rv32imc under QEMU.
 * Prints the number of cases; exit 0 only when all agree. */
#include <stdio.h>

#include "coach_engine.c"

/* gemmlowp SaturatingRoundingDoublingHighMul as TFLM writes it (64-bit division truncating
   toward zero, sign-dependent nudge, the INT32_MIN saturation). */
static int32_t ref_srdhm(int32_t a, int32_t b) {
  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
  const int64_t ab = (int64_t)a * (int64_t)b;
  const int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
  return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* gemmlowp RoundingDivideByPOT. */
static int32_t ref_rdbp(int32_t x, int exponent) {
  const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLM MultiplyByQuantizedMultiplier (double rounding). */
static int32_t ref_mbqm(int32_t x, int32_t multiplier, int shift) {
  const int left = shift > 0 ? shift : 0;
  const int right = shift > 0 ? 0 : -shift;
  return ref_rdbp(ref_srdhm((int32_t)((int64_t)x * ((int64_t)1 << left)), multiplier), right);
}

static uint32_t rng = 0x2545F491u;
static uint32_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng;
}

#ifndef DENSE /* every accumulator in [-DENSE, DENSE] */
#define DENSE 4096
#endif
#ifndef RANDOM_ACC /* pseudo-random accumulators per (shift, multiplier) */
#define RANDOM_ACC 2000
#endif
#ifndef RANDOM_MULTIPLIERS
#define RANDOM_MULTIPLIERS 60
#endif

static long cases, mismatches;

static void check(int32_t acc, int32_t multiplier, int shift) {
  const int32_t got = multiply_by_quantized_multiplier(acc, multiplier, shift);
  const int32_t want = ref_mbqm(acc, multiplier, shift);
  ++cases;
  if (got != want && mismatches++ < 10) {
    printf("MISMATCH acc=%ld multiplier=%ld shift=%d: engine %ld, reference %ld\n", (long)acc,
           (long)multiplier, shift, (long)got, (long)want);
  }
}

int main(void) {
  const int32_t fixed_multipliers[] = {0, (int32_t)1 << 30, ((int32_t)1 << 30) + 1, INT32_MAX};
  for (int shift = -31; shift <= 30; ++shift) {
    /* the loader's bound on |acc| = |bias + dot product| for this shift (coach_model_load.c check_layer) */
    const int64_t bound = shift > 0 ? (int64_t)INT32_MAX >> shift
                                    : (int64_t)INT32_MAX - (shift < 0 ? (int64_t)1 << (-shift - 1) : 0);
    for (int k = 0; k < 4 + RANDOM_MULTIPLIERS; ++k) {
      const int32_t multiplier = k < 4 ? fixed_multipliers[k] : (int32_t)(((uint32_t)1 << 30) | (next() >> 2));
      for (int32_t acc = -DENSE; acc <= DENSE; ++acc) {
        if (acc <= bound && -acc <= bound) check(acc, multiplier, shift);
      }
      for (int d = 0; d < 64; ++d) {
        check((int32_t)(bound - d), multiplier, shift);
        check((int32_t)(-bound + d), multiplier, shift);
      }
      for (int r = 0; r < RANDOM_ACC; ++r) {
        const int64_t span = 2 * bound + 1;
        check((int32_t)((int64_t)(((uint64_t)next() << 32 | next()) % (uint64_t)span) - bound), multiplier, shift);
      }
    }
  }
  printf("REQUANT_CASES %ld\nREQUANT_MISMATCHES %ld\n", cases, mismatches);
  return mismatches == 0 ? 0 : 1;
}
