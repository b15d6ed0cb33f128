#include "haptics.h"

#include "feature_schema.h" /* CUE_*: the cue language, generated from the feature schema */
#include "protocol_defs.h"

static uint16_t clamp_u16(float v, float lo, float hi) {
    if (!(v >= lo)) v = lo; /* also maps NaN to lo */
    if (v > hi) v = hi;
    return (uint16_t)(v + 0.5f);
}

void haptics_init(haptics_t *h, const coach_board_t *board, const coach_hal_t *hal) {
    haptic_motor_t zero = {0, 0, 0, 0, 0, 0};
    h->board = board;
    h->hal = hal;
    h->motor[0] = zero;
    h->motor[1] = zero;
    h->freq_hz = 0;
    h->band = HAPTICS_BAND_MID;
    h->tick_count = 0;
    h->limited = 0;
    h->enabled = 1;
    h->hal_written = 0;
}

uint8_t haptics_cue_band(float freq_hz) {
    if (freq_hz <= CUE_LOW_MAX_HZ) return HAPTICS_BAND_LOW;
    if (freq_hz >= CUE_HIGH_MIN_HZ) return HAPTICS_BAND_HIGH;
    return HAPTICS_BAND_MID; /* also NaN: the band with no meaning */
}

/* Below CUE_MOTOR_ON a motor is off in the cue language, so it must not buzz either. */
static float cue_intensity(float v) { return v >= CUE_MOTOR_ON ? v : 0.0f; }

uint8_t haptics_set_target(haptics_t *h, float left01, float right01, float freq_hz) {
    uint16_t cap = h->board->duty_cap_permille > 1000 ? 1000 : h->board->duty_cap_permille;
    uint16_t want[2];
    uint8_t flags = 0;
    want[0] = clamp_u16(cue_intensity(left01) * 1000.0f, 0.0f, 1000.0f);
    want[1] = clamp_u16(cue_intensity(right01) * 1000.0f, 0.0f, 1000.0f);
    for (int m = 0; m < 2; m++) {
        if (want[m] > cap) {
            want[m] = cap;
            flags = HAPTIC_FLAG_RAMP_LIMITED;
        }
        h->motor[m].target_duty = want[m];
    }
    h->freq_hz = clamp_u16(freq_hz, ACTION_FREQUENCY_MIN, ACTION_FREQUENCY_MAX);
    /* the band comes from the unrounded frequency, exactly as the simulator decides it */
    h->band = haptics_cue_band(freq_hz < ACTION_FREQUENCY_MIN ? ACTION_FREQUENCY_MIN : freq_hz);
    return flags;
}

uint16_t haptics_render_freq(const coach_board_t *b, uint16_t freq_hz) {
    if (b->driver == BOARD_DRIVER_LRA_DRV2605) {
        /* An LRA only vibrates near resonance: keep the cue inside the actuator's band. */
        if (freq_hz < b->lra_min_hz) return b->lra_min_hz;
        if (freq_hz > b->lra_max_hz) return b->lra_max_hz;
    }
    return freq_hz;
}

uint8_t haptics_erm_pattern_on(uint8_t band, uint32_t tick) {
    /* The cue vocabulary needs "low" and "high" to feel different on an ERM, whose mechanical
     * frequency follows its voltage. Low cues pulse slowly, mid cues pulse fast, high cues hum. */
    if (band == HAPTICS_BAND_LOW) return (uint8_t)((tick / 4u) % 2u == 0u); /* 200 ms on / 200 ms off */
    if (band == HAPTICS_BAND_MID) return (uint8_t)(tick % 2u == 0u);        /* 50 ms on / 50 ms off */
    return 1u;
}

static void write_motor(haptics_t *h, uint8_t m, uint16_t duty, uint16_t freq) {
    haptic_motor_t *mo = &h->motor[m];
    if (h->hal_written && mo->out_duty == duty && mo->out_freq == freq) return;
    mo->out_duty = duty;
    mo->out_freq = freq;
    if (h->hal->motor_set) h->hal->motor_set(m, duty, freq);
}

void haptics_tick(haptics_t *h) {
    const coach_board_t *b = h->board;
    uint16_t freq = haptics_render_freq(b, h->freq_hz);
    uint8_t limited = 0;
    h->tick_count++;
    for (uint8_t m = 0; m < 2; m++) {
        haptic_motor_t *mo = &h->motor[m];
        uint16_t out = 0;
        if (!h->enabled) {
            mo->duty = 0;
            mo->on_ms = 0;
        } else if (mo->rest_left_ms > 0) {
            mo->rest_left_ms = mo->rest_left_ms > HAPTICS_TICK_MS ? mo->rest_left_ms - HAPTICS_TICK_MS : 0;
            mo->duty = 0;
            limited |= (uint8_t)(mo->target_duty > 0);
        } else {
            /* Rising edges are ramp limited (no jolts); falling edges are immediate (safety). */
            if (mo->target_duty > mo->duty) {
                uint16_t step = b->ramp_permille_per_tick ? b->ramp_permille_per_tick : 1000u;
                uint16_t room = (uint16_t)(mo->target_duty - mo->duty);
                if (room > step) limited = 1;
                mo->duty = (uint16_t)(mo->duty + (room > step ? step : room));
            } else {
                mo->duty = mo->target_duty;
            }
            if (mo->duty > 0) {
                mo->on_ms += HAPTICS_TICK_MS;
                if (b->max_on_ms && mo->on_ms > b->max_on_ms) {
                    mo->on_ms = 0;
                    /* this tick is the first of the rest */
                    mo->rest_left_ms = b->rest_ms > HAPTICS_TICK_MS ? b->rest_ms - HAPTICS_TICK_MS : 0;
                    mo->duty = 0;
                    limited = 1;
                }
            } else {
                mo->on_ms = 0;
            }
            out = mo->duty;
            if (out && b->driver == BOARD_DRIVER_ERM_PWM && !haptics_erm_pattern_on(h->band, h->tick_count))
                out = 0;
        }
        write_motor(h, m, out, out ? freq : 0);
    }
    h->limited = limited;
    h->hal_written = 1;
}

void haptics_force_off(haptics_t *h) {
    h->enabled = 0;
    for (uint8_t m = 0; m < 2; m++) {
        h->motor[m].target_duty = 0;
        h->motor[m].duty = 0;
        h->motor[m].on_ms = 0;
        h->motor[m].out_duty = 0;
        h->motor[m].out_freq = 0;
        if (h->hal->motor_set) h->hal->motor_set(m, 0, 0); /* unconditional: this is the safe state */
    }
    h->hal_written = 1;
}

void haptics_enable(haptics_t *h) { h->enabled = 1; }
