/* A tiny hand-made model standing in for the generated factory model in unit tests, so the tests
 * pin the control loop's behaviour independently of whichever policy was trained:
 *   out0 (left)  = clamp(2 * q(line_deviation) - 128)
 *   out1 (right) = clamp(-2 * q(line_deviation) - 128)
 *   out2 (freq)  = q(speed)
 * with identity requantization (multiplier 2^30, shift 1) and no head. */
#include "coach_engine.h"
#include "feature_schema.h"

static const float fmin_[SCHEMA_N_FEATURES] = SCHEMA_FEATURE_MIN;
static const float fmax_[SCHEMA_N_FEATURES] = SCHEMA_FEATURE_MAX;
static const float off_[SCHEMA_N_FEATURES] = SCHEMA_NORM_OFFSET;
static const float scale_[SCHEMA_N_FEATURES] = SCHEMA_NORM_SCALE;

static const int8_t weights_[3 * SCHEMA_N_FEATURES] = {
    0, 0, 0, 0, 0, 0, 2, 0,  /* left */
    0, 0, 0, 0, 0, 0, -2, 0, /* right */
    1, 0, 0, 0, 0, 0, 0, 0,  /* frequency */
};
static const int32_t bias_[3] = {-128, -128, 0};
static const int32_t mult_[3] = {1 << 30, 1 << 30, 1 << 30};
static const int32_t shift_[3] = {1, 1, 1};

static const int8_t golden_in_[2 * SCHEMA_N_FEATURES] = {
    0, 0, 0, 0, 0, 0, 0, 0,
    127, 0, 0, 0, 0, 0, 64, 0,
};
/* Mutable on purpose: a test corrupts it to exercise the failed-self-test path. */
int8_t test_model_golden_out[2 * 3] = {-128, -128, 0, 0, -128, 127};

const coach_model_t coach_default_model = {
    COACH_ENGINE_VERSION, SCHEMA_HASH32, SCHEMA_N_FEATURES, 3, 1, 2, COACH_HEAD_NONE,
    1.0f / 127.0f, 0, 1.0f / 255.0f, -128,
    fmin_, fmax_, off_, scale_, NULL, golden_in_, test_model_golden_out,
    {{SCHEMA_N_FEATURES, 3, 0, -128, 127, weights_, bias_, mult_, shift_}},
    "unit-test-model",
    {0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB,
     0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB},
};
