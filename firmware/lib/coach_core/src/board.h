/* Constant board configuration (from boards/<id>.toml through the generated board_<id>.h).
 * Runtime state lives elsewhere (haptics_t, coach_core_t); this struct is read-only. */
#ifndef MOTOCOACH_BOARD_H
#define MOTOCOACH_BOARD_H

#include <stdint.h>

typedef enum {
    BOARD_DRIVER_ERM_PWM = 0,     /* eccentric mass motor behind a PWM transistor stage */
    BOARD_DRIVER_LRA_DRV2605 = 1  /* linear resonant actuator behind a TI DRV2605 on I2C */
} board_driver_t;

typedef struct coach_board {
    const char *id;               /* e.g. "esp32dev"; reported in IDENTITY */
    board_driver_t driver;
    uint16_t duty_cap_permille;   /* board cap on motor duty, <= 1000 */
    uint16_t ramp_permille_per_tick; /* max duty increase per 20 Hz tick */
    uint16_t max_on_ms;           /* max continuous on-time before a forced rest */
    uint16_t rest_ms;             /* length of that forced rest */
    uint16_t lra_min_hz;          /* LRA drive band (resonance); ERM boards ignore it */
    uint16_t lra_max_hz;
    uint32_t pwm_carrier_hz;      /* ERM PWM carrier, > 20 kHz so it is inaudible */
} coach_board_t;

#endif /* MOTOCOACH_BOARD_H */
