/* The control loop: frames in, haptics out, never blocking.
 *
 * A target's main() fills a coach_hal_t, calls coach_core_init() once and then
 * coach_core_poll() as fast as it likes. Each poll reads whatever UART bytes are waiting,
 * handles complete frames (TELEMETRY -> quantize -> infer -> haptics -> HAPTIC reply), runs the
 * failsafe check, the 20 Hz haptic tick, and pushes queued TX bytes without waiting.
 */
#ifndef MOTOCOACH_COACH_CORE_H
#define MOTOCOACH_COACH_CORE_H

#include <stdint.h>

#include "board.h"
#include "coach_engine.h"
#include "core_util.h"
#include "hal.h"
#include "haptics.h"
#include "model_slots.h"
#include "protocol.h"

#define COACH_FW_MAJOR 0
#define COACH_FW_MINOR 2
#define COACH_FW_PATCH 0

/* COACH_TRUSTED_KEY_ID (reported in IDENTITY) comes from the generated trusted_key.h. */

#define COACH_TX_RING_SIZE 1024u   /* power of two; holds several replies and a LOG */
#define COACH_LOG_LINES 8u
#define COACH_LOG_TEXT 64u
#define COACH_DEADLINE_US 50000u   /* one 20 Hz period: a frame handled slower is a deadline miss */
#define COACH_RESET_GRACE_US 20000u /* time allowed for the RESET ACK to leave before resetting */
#define COACH_RX_CHUNK 64u

/* Log levels in LOG frames. */
#define COACH_LOG_DEBUG 0u
#define COACH_LOG_INFO 1u
#define COACH_LOG_WARN 2u
#define COACH_LOG_ERROR 3u

typedef struct {
    uint32_t frames_ok;       /* frames with good COBS, CRC and version */
    uint32_t crc_errors;
    uint32_t frame_errors;    /* COBS, length, oversized, wrong version, unknown type */
    uint32_t value_errors;    /* NaN / inf telemetry */
    uint32_t deadline_misses;
    uint32_t failsafe_trips;
    uint32_t max_loop_us;
    uint32_t tx_dropped;      /* replies that did not fit the TX ring */
    uint32_t uart_errors;
} coach_counters_t;

typedef struct {
    uint8_t level;
    char text[COACH_LOG_TEXT];
} coach_log_line_t;

typedef struct coach_core {
    const coach_hal_t *hal;
    const coach_board_t *board;
    proto_decoder_t rx;
    uint8_t tx[COACH_TX_RING_SIZE];
    uint32_t tx_head, tx_tail;        /* free-running; used = head - tail */
    haptics_t haptics;
    model_slots_t slots;
    coach_model_t loaded;             /* storage for a model prepared from a slot blob */
    const coach_model_t *model;       /* &loaded or &coach_default_model */
    uint8_t selftest_ok;
    uint8_t fault;                    /* FAULT_* */
    uint8_t armed;                    /* valid telemetry seen since the last failsafe trip */
    uint8_t failsafe_since_valid;     /* tripped since the last valid frame: flag the next HAPTIC */
    uint8_t reset_pending;
    uint8_t unit_id[PROTO_UNIT_ID_LEN]; /* from the HAL at init; zeros if it has none */
    uint8_t has_unit_id;
    uint16_t trial_frames;            /* good TELEMETRY frames since the model went on trial */
    uint16_t own_seq;                 /* seq of unsolicited frames (FAULT) */
    uint64_t boot_us;
    uint64_t last_valid_us;
    uint64_t next_tick_us;
    uint64_t reset_at_us;
    coach_counters_t cnt;
    coach_log_line_t log[COACH_LOG_LINES];
    uint8_t log_head, log_count;
} coach_core_t;

/* Prepare the core: checks the HAL (uart_read, uart_write, now_us are required; else
 * CORE_ERR_UNSUPPORTED), scans the model slots, loads the active model and runs its self-test.
 * A failed self-test is not an init error: the core runs, answers, and keeps the motors off. */
CORE_MUST_CHECK int coach_core_init(coach_core_t *c, const coach_hal_t *hal, const coach_board_t *board);

/* One loop iteration; never blocks. */
void coach_core_poll(coach_core_t *c);

/* 1 if the running model passed its golden vectors (ESP-IDF marks the OTA image valid only then). */
uint8_t coach_core_selftest_ok(const coach_core_t *c);

/* Feed received bytes directly (used by poll; exposed for tests and fuzzing). */
void coach_core_rx_bytes(coach_core_t *c, const uint8_t *data, size_t len);

/* Queue an info line for LOG_REQ (text is truncated to COACH_LOG_TEXT - 1). */
void coach_core_log(coach_core_t *c, uint8_t level, const char *text);

#endif /* MOTOCOACH_COACH_CORE_H */
