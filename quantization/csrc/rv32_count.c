/* rv32imc instruction counter for the engine, run under QEMU with -icount shift=0.
 * With -icount, QEMU's instret CSR counts guest instructions exactly. The count of one
 * inference depends on the input (the requantization's rounding and the activation clamps
 * branch), so this reports the worst and the best over the golden vectors plus N_RANDOM
 * pseudo-random int8 inputs, and the same for the float input quantizer over random telemetry
 * inside and outside the schema ranges. Prints through semihosting; returns 0 when the golden
 * self-test passed. */
#include <stdio.h>

#include "coach_engine.h"

#define N_RANDOM 2000

static inline uint32_t instret(void) {
  uint32_t v;
  __asm__ volatile("csrr %0, instret" : "=r"(v));
  return v;
}

static uint32_t rng_state = 0x9E3779B9u;
static uint32_t xorshift32(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state;
}

typedef struct {
  uint32_t worst, best;
} span_t;

static void note(span_t *s, uint32_t n) {
  if (n > s->worst) s->worst = n;
  if (n < s->best) s->best = n;
}

int main(void) {
  const coach_model_t *m = &coach_default_model;
  int8_t in[COACH_MAX_IO], out[COACH_MAX_IO];
  float tel[COACH_MAX_IO], act[COACH_MAX_IO];
  uint8_t clamped = 0;
  uint32_t t0, t1, empty;
  span_t inv = {0, 0xFFFFFFFFu}, quant = {0, 0xFFFFFFFFu};
  t0 = instret();
  t1 = instret();
  empty = t1 - t0; /* cost of reading the counter itself */
  for (int g = 0; g < m->n_golden + N_RANDOM; ++g) {
    const int8_t *x = in;
    if (g < m->n_golden) {
      x = m->golden_in + g * m->n_inputs;
    } else {
      for (int i = 0; i < m->n_inputs; ++i) in[i] = (int8_t)(xorshift32() >> 24);
    }
    t0 = instret();
    coach_status_t st = coach_model_invoke(m, x, out);
    t1 = instret();
    if (st != COACH_OK) return 2;
    note(&inv, t1 - t0 - empty);
  }
  for (int r = 0; r < N_RANDOM; ++r) {
    for (int i = 0; i < m->n_inputs; ++i) { /* uniform over 1.5x the schema range: some clamp */
      const float u = (float)(xorshift32() >> 8) / 16777216.0f;
      const float span = m->feature_max[i] - m->feature_min[i];
      tel[i] = m->feature_min[i] - 0.25f * span + 1.5f * span * u;
    }
    t0 = instret();
    coach_status_t st = coach_model_quantize_input(m, tel, in, &clamped);
    t1 = instret();
    if (st != COACH_OK) return 3;
    note(&quant, t1 - t0 - empty);
  }
  coach_model_dequantize_output(m, out, act);
  printf("INVOKE_WORST_INSTRUCTIONS %lu\n", (unsigned long)inv.worst);
  printf("INVOKE_BEST_INSTRUCTIONS %lu\n", (unsigned long)inv.best);
  printf("QUANTIZE_WORST_INSTRUCTIONS %lu\n", (unsigned long)quant.worst);
  printf("QUANTIZE_BEST_INSTRUCTIONS %lu\n", (unsigned long)quant.best);
  return coach_model_selftest(m) == COACH_OK ? 0 : 1;
}
