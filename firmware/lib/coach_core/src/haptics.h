/* Haptic mapping: model actions -> per-motor duty and frequency, with the safety limits.
 *
 * haptics_set_target() takes the latest cue; haptics_tick() (20 Hz) renders it: ramp limit on
 * rising duty, the board's duty cap, a maximum continuous on-time followed by a forced rest, and
 * for ERM motors the frequency band becomes an on/off pattern (an ERM cannot choose its frequency).
 * The cue language (motor-on threshold, frequency bands) comes from feature_schema.h: an intensity
 * below CUE_MOTOR_ON leaves the motor off, as the simulator and the checks decide it. */
#ifndef MOTOCOACH_HAPTICS_H
#define MOTOCOACH_HAPTICS_H

#include <stdint.h>

#include "board.h"
#include "hal.h"

#define HAPTICS_TICK_MS 50u

/* Frequency bands of the cue language (CUE_LOW_MAX_HZ / CUE_HIGH_MIN_HZ). */
enum { HAPTICS_BAND_LOW = 0, HAPTICS_BAND_MID = 1, HAPTICS_BAND_HIGH = 2 };

typedef struct {
    uint16_t target_duty;  /* permille, after the board cap */
    uint16_t duty;         /* permille, what the motor is driven with now (before pattern gating) */
    uint16_t out_duty;     /* last value handed to the HAL */
    uint16_t out_freq;
    uint32_t on_ms;        /* continuous on-time so far */
    uint32_t rest_left_ms; /* > 0 while a forced rest is running */
} haptic_motor_t;

typedef struct {
    const coach_board_t *board;
    const coach_hal_t *hal;
    haptic_motor_t motor[2];
    uint16_t freq_hz;      /* commanded vibration frequency (50..300) */
    uint8_t band;          /* HAPTICS_BAND_* of the commanded (unrounded) frequency */
    uint32_t tick_count;
    uint8_t limited;       /* 1 if the last render was cut by ramp / on-time / cap */
    uint8_t enabled;       /* 0: outputs forced off (failsafe or failed self-test) */
    uint8_t hal_written;   /* at least one motor_set has been issued */
} haptics_t;

void haptics_init(haptics_t *h, const coach_board_t *board, const coach_hal_t *hal);
/* intensities in [0,1] (below CUE_MOTOR_ON = off), freq in Hz; out-of-range values are clamped. Returns the RAMP_LIMITED
 * flag bit if the cap already cuts the cue, else 0. */
uint8_t haptics_set_target(haptics_t *h, float left01, float right01, float freq_hz);
/* Advance by one 20 Hz tick and write changed outputs to the HAL. */
void haptics_tick(haptics_t *h);
/* Motors off NOW (writes the HAL unconditionally) and stay off until haptics_enable(). */
void haptics_force_off(haptics_t *h);
void haptics_enable(haptics_t *h);
/* Frequency actually rendered for freq_hz on this board (LRA band clamp; ERM pattern id). */
uint16_t haptics_render_freq(const coach_board_t *b, uint16_t freq_hz);
/* Cue-language band of a frequency in Hz: HAPTICS_BAND_LOW / _MID / _HIGH. */
uint8_t haptics_cue_band(float freq_hz);
/* ERM pattern: 1 if the motor is on in this tick for a cue in this band. */
uint8_t haptics_erm_pattern_on(uint8_t band, uint32_t tick);

#endif /* MOTOCOACH_HAPTICS_H */
