#include "coach_core.h"

#include <math.h>
#include <string.h>

#include "core_update.h"
#include "feature_schema.h"
#include "trusted_key.h"

/* ------------------------------------------------------------------ TX ring (never blocks) */

static uint32_t tx_used(const coach_core_t *c) { return c->tx_head - c->tx_tail; }

static void tx_flush(coach_core_t *c) {
    while (tx_used(c) > 0) {
        uint32_t start = c->tx_tail & (COACH_TX_RING_SIZE - 1u);
        uint32_t run = COACH_TX_RING_SIZE - start; /* contiguous bytes up to the ring's end */
        if (run > tx_used(c)) run = tx_used(c);
        int n = c->hal->uart_write(&c->tx[start], run);
        if (n < 0) {
            c->cnt.uart_errors++;
            return;
        }
        if (n == 0) return; /* driver full: try again next poll */
        c->tx_tail += (uint32_t)n;
    }
}

/* Queue one whole frame or drop it (never a partial frame: the host would see garbage). */
static void send_frame(coach_core_t *c, uint8_t type, uint16_t seq, const uint8_t *payload, size_t len) {
    uint8_t wire[PROTO_MAX_ENCODED + 1];
    size_t n = 0;
    if (proto_frame_build(type, seq, payload, len, wire, sizeof wire, &n) != PROTO_OK ||
        COACH_TX_RING_SIZE - tx_used(c) < n) {
        c->cnt.tx_dropped++;
        return;
    }
    for (size_t i = 0; i < n; i++) c->tx[(c->tx_head + i) & (COACH_TX_RING_SIZE - 1u)] = wire[i];
    c->tx_head += (uint32_t)n;
    tx_flush(c);
}

void core_send_ack(coach_core_t *c, const proto_frame_t *f, uint8_t status, uint32_t value) {
    uint8_t p[ACK_LEN];
    p[ACK_OFF_REQUEST_TYPE] = f->type;
    p[ACK_OFF_STATUS] = status;
    core_put_u32(&p[ACK_OFF_VALUE], value);
    send_frame(c, MSG_ACK, f->seq, p, sizeof p);
}

/* ------------------------------------------------------------------ log ring */

void coach_core_log(coach_core_t *c, uint8_t level, const char *text) {
    uint8_t idx = (uint8_t)((c->log_head + c->log_count) % COACH_LOG_LINES);
    if (c->log_count == COACH_LOG_LINES) {
        c->log_head = (uint8_t)((c->log_head + 1u) % COACH_LOG_LINES); /* overwrite the oldest */
    } else {
        c->log_count++;
    }
    c->log[idx].level = level;
    strncpy(c->log[idx].text, text, COACH_LOG_TEXT - 1u);
    c->log[idx].text[COACH_LOG_TEXT - 1u] = '\0';
}

/* ------------------------------------------------------------------ model selection */

int core_validate_blob(const uint8_t *blob, size_t len, void *ctx) {
    coach_model_t tmp;
    (void)ctx;
    coach_status_t st = coach_model_load(blob, len, &tmp);
    if (st != COACH_OK) return STATUS_INCOMPATIBLE;
    if (coach_model_selftest(&tmp) != COACH_OK) return STATUS_SELFTEST_FAILED;
    return STATUS_OK;
}

/* Point c->model at the slot's model if it loads and passes its golden vectors, else at the
 * factory model; motors are enabled only when the chosen model passed. */
void core_activate_model(coach_core_t *c) {
    size_t len = 0;
    const uint8_t *blob = slots_active_blob(&c->slots, &len);
    c->model = &coach_default_model;
    if (blob != NULL) {
        if (coach_model_load(blob, len, &c->loaded) == COACH_OK && coach_model_selftest(&c->loaded) == COACH_OK) {
            c->model = &c->loaded;
        } else {
            coach_core_log(c, COACH_LOG_ERROR, "slot model failed to load/self-test; using factory");
        }
    }
    c->selftest_ok = (uint8_t)(c->model == &c->loaded || coach_model_selftest(c->model) == COACH_OK);
    if (c->selftest_ok) {
        if (c->fault == FAULT_SELFTEST_FAILED) c->fault = FAULT_NONE;
        haptics_enable(&c->haptics);
        coach_core_log(c, COACH_LOG_INFO, "self-test passed");
    } else {
        c->fault = FAULT_SELFTEST_FAILED;
        haptics_force_off(&c->haptics);
        coach_core_log(c, COACH_LOG_ERROR, "self-test FAILED: motors disabled");
    }
}

/* ------------------------------------------------------------------ message handlers */

static void handle_hello(coach_core_t *c, const proto_frame_t *f) {
    uint8_t p[IDENTITY_LEN];
    uint8_t active = 0, sa = 0, sb = 0;
    if (f->len != HELLO_LEN) {
        core_send_ack(c, f, STATUS_BAD_LENGTH, 0);
        return;
    }
    uint8_t hmin = f->payload[HELLO_OFF_PROTO_MIN], hmax = f->payload[HELLO_OFF_PROTO_MAX];
    if (hmin > hmax || hmax < PROTO_MIN || hmin > PROTO_MAX) {
        core_send_ack(c, f, STATUS_BAD_VERSION, ((uint32_t)PROTO_MIN) | ((uint32_t)PROTO_MAX << 8));
        return;
    }
    memset(p, 0, sizeof p);
    p[IDENTITY_OFF_FW_MAJOR] = COACH_FW_MAJOR;
    p[IDENTITY_OFF_FW_MINOR] = COACH_FW_MINOR;
    p[IDENTITY_OFF_FW_PATCH] = COACH_FW_PATCH;
    p[IDENTITY_OFF_PROTO_VERSION] = hmax < PROTO_MAX ? hmax : PROTO_MAX;
    p[IDENTITY_OFF_PROTO_MIN] = PROTO_MIN;
    p[IDENTITY_OFF_PROTO_MAX] = PROTO_MAX;
    strncpy((char *)&p[IDENTITY_OFF_BOARD], c->board->id, PROTO_BOARD_ID_LEN);
    strncpy((char *)&p[IDENTITY_OFF_MODEL_ID], coach_model_id(c->model), PROTO_MODEL_ID_LEN - 1u);
    memcpy(&p[IDENTITY_OFF_MODEL_SHA256], coach_model_sha256(c->model), PROTO_SHA256_LEN);
    core_put_u32(&p[IDENTITY_OFF_SCHEMA_HASH], SCHEMA_HASH32);
    p[IDENTITY_OFF_ENGINE_VERSION] = COACH_ENGINE_VERSION;
    slots_report(&c->slots, &active, &sa, &sb);
    if (c->model == &coach_default_model) active = SLOTS_ACTIVE_FACTORY; /* slot model refused at boot */
    p[IDENTITY_OFF_ACTIVE_SLOT] = active;
    p[IDENTITY_OFF_SLOT_A_STATE] = sa;
    p[IDENTITY_OFF_SLOT_B_STATE] = sb;
    p[IDENTITY_OFF_SELFTEST_OK] = c->selftest_ok;
    core_put_u32(&p[IDENTITY_OFF_SLOT_SIZE], c->slots.capacity);
    core_put_u32(&p[IDENTITY_OFF_KEY_ID], COACH_TRUSTED_KEY_ID);
    memcpy(&p[IDENTITY_OFF_UNIT_ID], c->unit_id, PROTO_UNIT_ID_LEN);
    core_put_u32(&p[IDENTITY_OFF_MODEL_VERSION],
                 active == SLOTS_ACTIVE_FACTORY ? 0u : slots_active_version(&c->slots));
    core_put_u32(&p[IDENTITY_OFF_VERSION_FLOOR], slots_floor(&c->slots));
    p[IDENTITY_OFF_TRIAL] = (uint8_t)(active != SLOTS_ACTIVE_FACTORY && slots_on_trial(&c->slots));
    send_frame(c, MSG_IDENTITY, f->seq, p, sizeof p);
}

/* Reported intensity: min(round(a01 * 255), board cap), in float32 so a host can recompute it. */
static uint8_t intensity_u8(const coach_core_t *c, float a01) {
    float v = a01 < 0.0f ? 0.0f : (a01 > 1.0f ? 1.0f : a01);
    uint32_t u = (uint32_t)(v * 255.0f + 0.5f);
    uint32_t cap = (uint32_t)c->board->duty_cap_permille * 255u / 1000u;
    return (uint8_t)(u > cap ? cap : u);
}

static void handle_telemetry(coach_core_t *c, const proto_frame_t *f, uint64_t t_frame) {
    float telemetry[SCHEMA_N_FEATURES];
    float actions[SCHEMA_N_ACTIONS];
    int8_t in[SCHEMA_N_FEATURES], out[SCHEMA_N_ACTIONS];
    uint8_t clamped = 0, flags = 0, p[HAPTIC_LEN];
    if (f->len != TELEMETRY_LEN) {
        c->cnt.frame_errors++;
        core_send_ack(c, f, STATUS_BAD_LENGTH, 0);
        return;
    }
    for (unsigned i = 0; i < SCHEMA_N_FEATURES; i++) {
        telemetry[i] = core_get_f32(&f->payload[4u * i]);
        if (!isfinite(telemetry[i])) {
            /* Invalid data never reaches the motors and does not refresh the failsafe. */
            c->cnt.value_errors++;
            core_send_ack(c, f, STATUS_BAD_VALUE, i);
            return;
        }
    }
    uint64_t t0 = c->hal->now_us();
    if (coach_model_quantize_input(c->model, telemetry, in, &clamped) != COACH_OK ||
        coach_model_invoke(c->model, in, out) != COACH_OK) {
        c->cnt.value_errors++;
        core_send_ack(c, f, STATUS_BAD_VALUE, 0xFFFFFFFFu);
        return;
    }
    uint64_t t1 = c->hal->now_us();
    coach_model_dequantize_output(c->model, out, actions);

    c->last_valid_us = t_frame;
    c->armed = c->selftest_ok; /* with the motors disabled there is nothing to fail safe */
    if (c->failsafe_since_valid) flags |= HAPTIC_FLAG_FAILSAFE;
    c->failsafe_since_valid = 0;
    if (c->selftest_ok) {
        if (c->fault == FAULT_STALE_TELEMETRY) c->fault = FAULT_NONE;
        haptics_enable(&c->haptics);
    } else {
        flags |= HAPTIC_FLAG_MOTORS_DISABLED; /* the report is computed, the motors stay off */
    }
    float freq = ACTION_FREQUENCY_MIN + actions[ACTION_FREQUENCY] * (ACTION_FREQUENCY_MAX - ACTION_FREQUENCY_MIN);
    flags |= haptics_set_target(&c->haptics, actions[ACTION_LEFT_INTENSITY], actions[ACTION_RIGHT_INTENSITY], freq);
    if (c->haptics.limited) flags |= HAPTIC_FLAG_RAMP_LIMITED;
    if (clamped) flags |= HAPTIC_FLAG_INPUT_CLAMPED;

    p[HAPTIC_OFF_LEFT] = intensity_u8(c, actions[ACTION_LEFT_INTENSITY]);
    p[HAPTIC_OFF_RIGHT] = intensity_u8(c, actions[ACTION_RIGHT_INTENSITY]);
    core_put_u16(&p[HAPTIC_OFF_FREQ_HZ], c->haptics.freq_hz);
    p[HAPTIC_OFF_OUT0] = (uint8_t)out[0];
    p[HAPTIC_OFF_OUT1] = (uint8_t)out[1];
    p[HAPTIC_OFF_OUT2] = (uint8_t)out[2];
    core_put_u32(&p[HAPTIC_OFF_INFER_US], (uint32_t)(t1 - t0));
    core_put_u32(&p[HAPTIC_OFF_LOOP_US], (uint32_t)(c->hal->now_us() - t_frame));
    p[HAPTIC_OFF_FLAGS] = flags;
    send_frame(c, MSG_HAPTIC, f->seq, p, sizeof p);
    core_update_telemetry_done(c, 1);
}

static void handle_status(coach_core_t *c, const proto_frame_t *f) {
    uint8_t p[STATUS_LEN];
    p[STATUS_OFF_STATE] = c->fault != FAULT_NONE;
    p[STATUS_OFF_FAULT] = c->fault;
    core_put_u32(&p[STATUS_OFF_FRAMES_OK], c->cnt.frames_ok);
    core_put_u32(&p[STATUS_OFF_CRC_ERRORS], c->cnt.crc_errors);
    core_put_u32(&p[STATUS_OFF_FRAME_ERRORS], c->cnt.frame_errors);
    core_put_u32(&p[STATUS_OFF_VALUE_ERRORS], c->cnt.value_errors);
    core_put_u32(&p[STATUS_OFF_DEADLINE_MISSES], c->cnt.deadline_misses);
    core_put_u32(&p[STATUS_OFF_FAILSAFE_TRIPS], c->cnt.failsafe_trips);
    core_put_u32(&p[STATUS_OFF_MAX_LOOP_US], c->cnt.max_loop_us);
    core_put_u32(&p[STATUS_OFF_UPTIME_MS], (uint32_t)((c->hal->now_us() - c->boot_us) / 1000u));
    core_put_u32(&p[STATUS_OFF_TX_DROPPED], c->cnt.tx_dropped);
    core_put_u32(&p[STATUS_OFF_UART_ERRORS], c->cnt.uart_errors);
    send_frame(c, MSG_STATUS, f->seq, p, sizeof p);
}

static void handle_log(coach_core_t *c, const proto_frame_t *f) {
    uint8_t p[LOG_LEN + COACH_LOG_TEXT];
    size_t n = 0;
    p[LOG_OFF_LEVEL] = 0;
    p[LOG_OFF_FLAGS] = 0;
    if (c->log_count > 0) {
        const coach_log_line_t *l = &c->log[c->log_head];
        n = strlen(l->text);
        p[LOG_OFF_LEVEL] = l->level;
        memcpy(&p[LOG_LEN], l->text, n);
        c->log_head = (uint8_t)((c->log_head + 1u) % COACH_LOG_LINES);
        c->log_count--;
        p[LOG_OFF_FLAGS] = (uint8_t)(c->log_count > 0); /* bit0: more lines pending */
    }
    send_frame(c, MSG_LOG, f->seq, p, LOG_LEN + n);
}

/* Requests with a fixed payload length (every type but TELEMETRY, HELLO and the model messages,
 * which check their own): any other length is a frame error, answered BAD_LENGTH and not acted on. */
static int fixed_length_ok(const proto_frame_t *f) {
    switch (f->type) {
    case MSG_STATUS_REQ: return f->len == STATUS_REQ_LEN;
    case MSG_LOG_REQ: return f->len == LOG_REQ_LEN;
    case MSG_RESET: return f->len == RESET_LEN;
    default: return 1;
    }
}

static void handle_frame(coach_core_t *c, const proto_frame_t *f, uint64_t t_frame) {
    /* HELLO is answered at any frame version: that is how a host negotiates. */
    if (f->type != MSG_HELLO && (f->version < PROTO_MIN || f->version > PROTO_MAX)) {
        c->cnt.frame_errors++;
        core_send_ack(c, f, STATUS_BAD_VERSION, ((uint32_t)PROTO_MIN) | ((uint32_t)PROTO_MAX << 8));
        return;
    }
    if (!fixed_length_ok(f)) {
        c->cnt.frame_errors++;
        core_send_ack(c, f, STATUS_BAD_LENGTH, 0);
        return;
    }
    c->cnt.frames_ok++;
    switch (f->type) {
    case MSG_HELLO: handle_hello(c, f); break;
    case MSG_TELEMETRY: handle_telemetry(c, f, t_frame); break;
    case MSG_STATUS_REQ: handle_status(c, f); break;
    case MSG_LOG_REQ: handle_log(c, f); break;
    case MSG_RESET:
        if (c->hal->reset == NULL) {
            core_send_ack(c, f, STATUS_BAD_STATE, (uint32_t)-CORE_ERR_UNSUPPORTED);
        } else {
            core_send_ack(c, f, STATUS_OK, 0);
            haptics_force_off(&c->haptics);
            c->reset_pending = 1;
            c->reset_at_us = c->hal->now_us() + COACH_RESET_GRACE_US;
        }
        break;
    case MSG_MODEL_BEGIN: case MSG_MODEL_CHUNK: case MSG_MODEL_COMMIT:
    case MSG_MODEL_ABORT: case MSG_MODEL_ROLLBACK: case MSG_MODEL_CONFIRM:
        core_update_handle(c, f);
        break;
    default:
        c->cnt.frames_ok--;
        c->cnt.frame_errors++;
        core_send_ack(c, f, STATUS_UNKNOWN_TYPE, 0);
        break;
    }
    uint32_t loop_us = (uint32_t)(c->hal->now_us() - t_frame);
    if (loop_us > c->cnt.max_loop_us) c->cnt.max_loop_us = loop_us;
    if (loop_us > COACH_DEADLINE_US) c->cnt.deadline_misses++;
}

/* ------------------------------------------------------------------ loop */

void coach_core_rx_bytes(coach_core_t *c, const uint8_t *data, size_t len) {
    proto_frame_t f;
    for (size_t i = 0; i < len; i++) {
        int r = proto_decoder_feed(&c->rx, data[i], &f);
        if (r == PROTO_FRAME_READY) {
            handle_frame(c, &f, c->hal->now_us());
        } else if (r == PROTO_ERR_CRC) {
            c->cnt.crc_errors++;
        } else if (r < 0) {
            c->cnt.frame_errors++;
        }
    }
}

static void failsafe_check(coach_core_t *c, uint64_t now) {
    if (!c->armed || now - c->last_valid_us <= (uint64_t)PROTO_FAILSAFE_MS * 1000u) return;
    uint8_t p[FAULT_LEN];
    haptics_force_off(&c->haptics);
    c->armed = 0;
    c->failsafe_since_valid = 1;
    c->cnt.failsafe_trips++;
    c->trial_frames = 0; /* a fault restarts the trial count */
    if (c->fault == FAULT_NONE) c->fault = FAULT_STALE_TELEMETRY;
    p[FAULT_OFF_FAULT] = FAULT_STALE_TELEMETRY;
    p[FAULT_OFF_STATE] = 1;
    send_frame(c, MSG_FAULT, c->own_seq++, p, sizeof p);
    coach_core_log(c, COACH_LOG_WARN, "failsafe: telemetry stale, motors off");
}

void coach_core_poll(coach_core_t *c) {
    uint8_t buf[COACH_RX_CHUNK];
    int n;
    /* Bounded: at most a few chunks per poll so the tick and failsafe keep their timing. */
    for (int k = 0; k < 8 && (n = c->hal->uart_read(buf, sizeof buf)) != 0; k++) {
        if (n < 0) {
            c->cnt.uart_errors++;
            break;
        }
        coach_core_rx_bytes(c, buf, (size_t)n);
    }
    uint64_t now = c->hal->now_us();
    failsafe_check(c, now);
    if (now >= c->next_tick_us) {
        haptics_tick(&c->haptics);
        c->next_tick_us += HAPTICS_TICK_MS * 1000u;
        if (c->next_tick_us <= now) c->next_tick_us = now + HAPTICS_TICK_MS * 1000u; /* fell behind */
    }
    tx_flush(c);
    if (c->reset_pending && (tx_used(c) == 0 || now >= c->reset_at_us)) {
        c->reset_pending = 0;
        c->hal->reset();
    }
}

int coach_core_init(coach_core_t *c, const coach_hal_t *hal, const coach_board_t *board) {
    ENSURE(hal != NULL && board != NULL, CORE_ERR_UNSUPPORTED);
    ENSURE(hal->uart_read != NULL && hal->uart_write != NULL && hal->now_us != NULL, CORE_ERR_UNSUPPORTED);
    memset(c, 0, sizeof *c);
    c->hal = hal;
    c->board = board;
    proto_decoder_init(&c->rx);
    haptics_init(&c->haptics, board, hal);
    haptics_force_off(&c->haptics); /* known state before anything else */
    c->boot_us = hal->now_us();
    c->next_tick_us = c->boot_us + HAPTICS_TICK_MS * 1000u;
    if (hal->unit_id != NULL && hal->unit_id(c->unit_id) == 0) {
        c->has_unit_id = 1;
    } else {
        memset(c->unit_id, 0, sizeof c->unit_id);
    }
    if (slots_init(&c->slots, hal) != STATUS_OK) {
        coach_core_log(c, COACH_LOG_WARN, "no model slot storage: factory model only");
    }
    core_activate_model(c);
    coach_core_log(c, COACH_LOG_INFO, "boot");
    return 0;
}

uint8_t coach_core_selftest_ok(const coach_core_t *c) { return c->selftest_ok; }
