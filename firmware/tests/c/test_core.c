/* Unit tests of the portable core: codec, stream decoder, haptics limits and the control loop
 * (dispatch, failsafe timing on a fake clock, counters, TX ring, self-test refusal). */
#include <math.h>
#include <string.h>

#include "coach_core.h"
#include "ctest.h"
#include "trusted_key.h"
#include "feature_schema.h"

extern int8_t test_model_golden_out[6];

/* ------------------------------------------------------------------ fake HAL */

static uint64_t fake_us;
static uint8_t rx_buf[4096];
static size_t rx_len, rx_pos;
static uint8_t tx_buf[8192];
static size_t tx_len;
static size_t tx_accept = (size_t)-1; /* bytes the fake driver accepts per call */
static uint16_t motor_duty[2], motor_freq[2];
static int motor_calls, reset_calls;
static uint8_t slot_mem[2][16384];

static int f_read(uint8_t *b, size_t max) {
    size_t n = rx_len - rx_pos < max ? rx_len - rx_pos : max;
    memcpy(b, rx_buf + rx_pos, n);
    rx_pos += n;
    return (int)n;
}
static int f_write(const uint8_t *b, size_t len) {
    size_t n = len < tx_accept ? len : tx_accept;
    if (n > sizeof tx_buf - tx_len) n = sizeof tx_buf - tx_len;
    memcpy(tx_buf + tx_len, b, n);
    tx_len += n;
    return (int)n;
}
static uint64_t f_now(void) { return fake_us; }
static void f_motor(uint8_t m, uint16_t d, uint16_t f) {
    motor_duty[m] = d;
    motor_freq[m] = f;
    motor_calls++;
}
static const uint8_t *f_map(uint8_t s) { return s < 2 ? slot_mem[s] : NULL; }
static int f_erase(uint8_t s) {
    memset(slot_mem[s], 0xFF, sizeof slot_mem[s]);
    return 0;
}
static int f_swrite(uint8_t s, uint32_t off, const uint8_t *d, size_t n) {
    if (off + n > sizeof slot_mem[s]) return -1;
    memcpy(&slot_mem[s][off], d, n);
    return 0;
}
static void f_reset(void) { reset_calls++; }
static const uint8_t fake_unit_id[PROTO_UNIT_ID_LEN] = {2, 0x24, 0xa1, 0xb2, 0xc3, 0xd4, 0, 0};
static int f_unit_id(uint8_t out[8]) {
    memcpy(out, fake_unit_id, sizeof fake_unit_id);
    return 0;
}

static const coach_hal_t hal = {f_read,  f_write, f_now, f_motor, f_map, f_erase, f_swrite, sizeof slot_mem[0],
                                f_reset, f_unit_id};
static const coach_board_t erm = {"test-erm", BOARD_DRIVER_ERM_PWM, 900, 300, 3000, 500, 0, 0, 25000};
static const coach_board_t lra = {"test-lra", BOARD_DRIVER_LRA_DRV2605, 1000, 1000, 3000, 500, 150, 250, 25000};
static coach_core_t core;

static void fake_reset_all(void) {
    fake_us = 1000000u;
    rx_len = rx_pos = tx_len = 0;
    tx_accept = (size_t)-1;
    motor_calls = reset_calls = 0;
    memset(motor_duty, 0, sizeof motor_duty);
    memset(slot_mem, 0xFF, sizeof slot_mem);
}

static void host_send(uint8_t type, uint16_t seq, const uint8_t *payload, size_t len) {
    size_t n = 0;
    CHECK_EQ(proto_frame_build(type, seq, payload, len, rx_buf + rx_len, sizeof rx_buf - rx_len, &n), PROTO_OK);
    rx_len += n;
}

/* Decode everything the device sent since the last call; returns the number of frames. */
static proto_decoder_t host_dec;
static uint8_t got_type[16], got_payload[16][PROTO_MAX_PAYLOAD], got_len[16];
static uint16_t got_seq[16];
static size_t tx_seen;
static int host_receive(void) {
    int n = 0;
    proto_frame_t f;
    for (; tx_seen < tx_len; tx_seen++) {
        if (proto_decoder_feed(&host_dec, tx_buf[tx_seen], &f) == PROTO_FRAME_READY) {
            if (n < 16) { /* keep the first 16, count them all */
                got_type[n] = f.type;
                got_seq[n] = f.seq;
                got_len[n] = f.len;
                memcpy(got_payload[n], f.payload, f.len);
            }
            n++;
        }
    }
    return n;
}

static void start_core(const coach_board_t *b) {
    fake_reset_all();
    proto_decoder_init(&host_dec);
    tx_seen = 0;
    CHECK_EQ(coach_core_init(&core, &hal, b), 0);
    (void)host_receive();
}

static void telemetry(uint16_t seq, float speed, float line_dev) {
    float t[SCHEMA_N_FEATURES] = {0};
    uint8_t p[TELEMETRY_LEN];
    t[FEATURE_SPEED] = speed;
    t[FEATURE_LINE_DEVIATION] = line_dev;
    t[FEATURE_THROTTLE] = 0.5f;
    for (int i = 0; i < SCHEMA_N_FEATURES; i++) {
        uint32_t u;
        memcpy(&u, &t[i], 4);
        core_put_u32(&p[4 * i], u);
    }
    host_send(MSG_TELEMETRY, seq, p, sizeof p);
}

/* Run the loop until fake time reaches t_us, in 1 ms steps. */
static void run_until(uint64_t t_us) {
    while (fake_us < t_us) {
        coach_core_poll(&core);
        fake_us += 1000u;
    }
    coach_core_poll(&core);
}

/* ------------------------------------------------------------------ codec */

static void test_crc(void) {
    CHECK_EQ(proto_crc16((const uint8_t *)"123456789", 9), 0x29B1); /* CCITT-FALSE check value */
    CHECK_EQ(proto_crc16(NULL, 0), 0xFFFF);
}

static void test_cobs_roundtrip(void) {
    static uint8_t in[300], enc[320], dec[320];
    uint32_t lcg = 12345;
    for (size_t len = 0; len <= 260; len += 13) {
        size_t el = 0, dl = 0;
        for (size_t i = 0; i < len; i++) {
            lcg = lcg * 1103515245u + 12345u;
            in[i] = (uint8_t)((lcg >> 16) % 4u == 0 ? 0 : (lcg >> 8));
        }
        CHECK_EQ(proto_cobs_encode(in, len, enc, sizeof enc, &el), PROTO_OK);
        CHECK(memchr(enc, 0, el) == NULL);
        CHECK_EQ(proto_cobs_decode(enc, el, dec, sizeof dec, &dl), PROTO_OK);
        CHECK_EQ(dl, len);
        CHECK(memcmp(in, dec, len) == 0);
    }
    memset(in, 0x11, 254); /* exactly one full block: no trailing code byte */
    size_t el = 0;
    CHECK_EQ(proto_cobs_encode(in, 254, enc, sizeof enc, &el), PROTO_OK);
    CHECK_EQ(el, 255);
    CHECK_EQ(enc[0], 0xFF);
    CHECK_EQ(proto_cobs_encode(in, 254, enc, 100, &el), PROTO_ERR_NO_SPACE);
}

static void test_cobs_malformed(void) {
    uint8_t out[16];
    size_t n = 0;
    const uint8_t overrun[] = {0x05, 1, 2};
    const uint8_t zero[] = {0x03, 1, 0};
    const uint8_t code0[] = {0x00};
    CHECK_EQ(proto_cobs_decode(overrun, sizeof overrun, out, sizeof out, &n), PROTO_ERR_COBS);
    CHECK_EQ(proto_cobs_decode(zero, sizeof zero, out, sizeof out, &n), PROTO_ERR_COBS);
    CHECK_EQ(proto_cobs_decode(code0, sizeof code0, out, sizeof out, &n), PROTO_ERR_COBS);
}

static void test_frame_parse_errors(void) {
    uint8_t wire[PROTO_MAX_ENCODED + 1], dec[PROTO_MAX_FRAME];
    const uint8_t payload[3] = {1, 0, 2};
    size_t n = 0, dl = 0;
    proto_frame_t f;
    CHECK_EQ(proto_frame_build(MSG_HELLO, 0xBEEF, payload, 3, wire, sizeof wire, &n), PROTO_OK);
    CHECK_EQ(wire[n - 1], 0);
    CHECK_EQ(proto_cobs_decode(wire, n - 1, dec, sizeof dec, &dl), PROTO_OK);
    CHECK_EQ(proto_frame_parse(dec, dl, &f), PROTO_OK);
    CHECK_EQ(f.seq, 0xBEEF);
    CHECK_EQ(f.len, 3);
    CHECK_EQ(f.payload[2], 2);
    dec[6] ^= 0x40; /* payload bit flip */
    CHECK_EQ(proto_frame_parse(dec, dl, &f), PROTO_ERR_CRC);
    dec[6] ^= 0x40;
    CHECK_EQ(proto_frame_parse(dec, dl - 1, &f), PROTO_ERR_LENGTH);
    CHECK_EQ(proto_frame_parse(dec, 4, &f), PROTO_ERR_SHORT);
    CHECK_EQ(proto_frame_build(MSG_LOG, 1, payload, PROTO_MAX_PAYLOAD + 1, wire, sizeof wire, &n), PROTO_ERR_TOO_LARGE);
}

static void test_decoder_resync(void) {
    proto_decoder_t d;
    proto_frame_t f;
    uint8_t wire[PROTO_MAX_ENCODED + 1];
    size_t n = 0;
    int frames = 0, errors = 0, too_large = 0;
    const uint8_t garbage[] = {0x13, 0x37, 0x00, 0x00, 0x42, 0x00};
    proto_decoder_init(&d);
    for (size_t i = 0; i < sizeof garbage; i++) {
        int r = proto_decoder_feed(&d, garbage[i], &f);
        errors += r < 0;
        frames += r == PROTO_FRAME_READY;
    }
    CHECK_EQ(frames, 0);
    CHECK_EQ(errors, 2); /* two non-empty garbage runs; the empty one is ignored */
    for (int i = 0; i < 600; i++) too_large += proto_decoder_feed(&d, 0x55, &f) != PROTO_NEED_MORE;
    CHECK_EQ(too_large, 0);
    CHECK_EQ(proto_decoder_feed(&d, 0x00, &f), PROTO_ERR_TOO_LARGE); /* oversized run discarded */
    CHECK_EQ(proto_frame_build(MSG_STATUS_REQ, 7, NULL, 0, wire, sizeof wire, &n), PROTO_OK);
    for (size_t i = 0; i < n; i++) frames += proto_decoder_feed(&d, wire[i], &f) == PROTO_FRAME_READY;
    CHECK_EQ(frames, 1);
    CHECK_EQ(f.type, MSG_STATUS_REQ);
    CHECK_EQ(f.seq, 7);
}

/* ------------------------------------------------------------------ haptics */

static void test_haptics_cap_and_ramp(void) {
    haptics_t h;
    fake_reset_all();
    haptics_init(&h, &erm, &hal);
    CHECK_EQ(haptics_set_target(&h, 1.0f, 0.2f, 300.0f), HAPTIC_FLAG_RAMP_LIMITED); /* cap 900 cuts 1000 */
    CHECK_EQ(h.motor[0].target_duty, 900);
    CHECK_EQ(h.motor[1].target_duty, 0); /* 0.2 < CUE_MOTOR_ON: off in the cue language */
    haptics_tick(&h);
    CHECK_EQ(motor_duty[0], 300); /* ramp 300/tick */
    CHECK_EQ(motor_duty[1], 0);
    CHECK(h.limited);
    haptics_tick(&h);
    CHECK_EQ(motor_duty[0], 600);
    haptics_tick(&h);
    haptics_tick(&h);
    CHECK_EQ(motor_duty[0], 900); /* never above the board cap */
    CHECK_EQ(motor_freq[0], 300);
    (void)haptics_set_target(&h, 0.0f, 0.0f, 300.0f);
    haptics_tick(&h);
    CHECK_EQ(motor_duty[0], 0); /* falling edge is immediate */
    (void)haptics_set_target(&h, 0.0f, 0.3f, 300.0f);
    CHECK_EQ(h.motor[1].target_duty, 300); /* exactly CUE_MOTOR_ON is on */
    haptics_tick(&h);
    CHECK_EQ(motor_duty[1], 300);
    CHECK_EQ(haptics_set_target(&h, NAN, -3.0f, NAN), 0);
    CHECK_EQ(h.motor[0].target_duty, 0);
    CHECK_EQ(h.motor[1].target_duty, 0);
    CHECK_EQ(h.freq_hz, 50);
}

static void test_haptics_max_on_time(void) {
    haptics_t h;
    int ticks_on = 0, rest_ticks = 0;
    fake_reset_all();
    haptics_init(&h, &lra, &hal);
    (void)haptics_set_target(&h, 0.5f, 0.0f, 200.0f);
    for (int t = 0; t < 100; t++) { /* 5 s of a constant cue */
        haptics_tick(&h);
        if (motor_duty[0]) ticks_on++;
        else if (ticks_on) rest_ticks++;
    }
    CHECK_EQ(ticks_on, 90);   /* 60 ticks (3000 ms max on-time), rest, then 30 more */
    CHECK_EQ(rest_ticks, 10); /* one 500 ms rest */
    CHECK_EQ(motor_freq[0], 200);
}

static void test_haptics_freq_mapping(void) {
    haptics_t h;
    int on = 0;
    CHECK_EQ(haptics_render_freq(&lra, 60), 150);  /* LRA: clamp into the resonance band */
    CHECK_EQ(haptics_render_freq(&lra, 290), 250);
    CHECK_EQ(haptics_render_freq(&erm, 60), 60);
    CHECK_EQ(haptics_cue_band(CUE_LOW_MAX_HZ), HAPTICS_BAND_LOW); /* the simulator's bands, edges included */
    CHECK_EQ(haptics_cue_band(CUE_LOW_MAX_HZ + 0.25f), HAPTICS_BAND_MID);
    CHECK_EQ(haptics_cue_band(CUE_HIGH_MIN_HZ - 0.25f), HAPTICS_BAND_MID);
    CHECK_EQ(haptics_cue_band(CUE_HIGH_MIN_HZ), HAPTICS_BAND_HIGH);
    CHECK_EQ(haptics_erm_pattern_on(HAPTICS_BAND_HIGH, 1), 1);   /* high: continuous */
    CHECK(haptics_erm_pattern_on(HAPTICS_BAND_MID, 1) != haptics_erm_pattern_on(HAPTICS_BAND_MID, 2)); /* mid: 50 ms pulses */
    fake_reset_all();
    haptics_init(&h, &erm, &hal);
    (void)haptics_set_target(&h, 0.5f, 0.0f, 60.0f);
    for (int t = 0; t < 16; t++) {
        haptics_tick(&h);
        on += motor_duty[0] > 0;
    }
    CHECK(on >= 6 && on <= 10); /* low: slow pulses, about half the time */
    haptics_force_off(&h);
    CHECK_EQ(motor_duty[0], 0);
    CHECK_EQ(motor_duty[1], 0);
}

/* ------------------------------------------------------------------ control loop */

static void test_hello_identity(void) {
    const uint8_t hello[HELLO_LEN] = {1, 3};
    start_core(&erm);
    host_send(MSG_HELLO, 0x1234, hello, sizeof hello);
    coach_core_poll(&core);
    CHECK_EQ(host_receive(), 1);
    CHECK_EQ(got_type[0], MSG_IDENTITY);
    CHECK_EQ(got_seq[0], 0x1234);
    CHECK_EQ(got_len[0], IDENTITY_LEN);
    CHECK(strcmp((const char *)&got_payload[0][IDENTITY_OFF_BOARD], "test-erm") == 0);
    CHECK(strcmp((const char *)&got_payload[0][IDENTITY_OFF_MODEL_ID], "unit-test-model") == 0);
    CHECK_EQ(core_get_u32(&got_payload[0][IDENTITY_OFF_SCHEMA_HASH]), SCHEMA_HASH32);
    CHECK_EQ(got_payload[0][IDENTITY_OFF_PROTO_VERSION], PROTO_VERSION);
    CHECK(memcmp(&got_payload[0][IDENTITY_OFF_UNIT_ID], fake_unit_id, PROTO_UNIT_ID_LEN) == 0);
    CHECK_EQ(core_get_u32(&got_payload[0][IDENTITY_OFF_VERSION_FLOOR]), 0);
    CHECK_EQ(got_payload[0][IDENTITY_OFF_TRIAL], 0);
    CHECK_EQ(got_payload[0][IDENTITY_OFF_SELFTEST_OK], 1);
    CHECK_EQ(got_payload[0][IDENTITY_OFF_ACTIVE_SLOT], 0);
    const uint8_t future[HELLO_LEN] = {7, 9};
    host_send(MSG_HELLO, 5, future, sizeof future);
    coach_core_poll(&core);
    CHECK_EQ(host_receive(), 1);
    CHECK_EQ(got_type[0], MSG_ACK);
    CHECK_EQ(got_payload[0][ACK_OFF_STATUS], STATUS_BAD_VERSION);
}

static void test_telemetry_haptic(void) {
    start_core(&erm);
    telemetry(42, 90.0f, 6.0f); /* line_dev +6 m -> q 127 -> left 126 -> ~1.0; speed 90 -> freq 300 */
    coach_core_poll(&core);
    CHECK_EQ(host_receive(), 1);
    CHECK_EQ(got_type[0], MSG_HAPTIC);
    CHECK_EQ(got_seq[0], 42);
    CHECK_EQ((int8_t)got_payload[0][HAPTIC_OFF_OUT0], 126);
    CHECK_EQ((int8_t)got_payload[0][HAPTIC_OFF_OUT1], -128);
    CHECK_EQ((int8_t)got_payload[0][HAPTIC_OFF_OUT2], 127);
    CHECK_EQ(got_payload[0][HAPTIC_OFF_LEFT], 229);  /* 254/255 capped to 900 permille = 229 */
    CHECK_EQ(got_payload[0][HAPTIC_OFF_RIGHT], 0);
    CHECK_EQ(core_get_u16(&got_payload[0][HAPTIC_OFF_FREQ_HZ]), 300);
    CHECK(got_payload[0][HAPTIC_OFF_FLAGS] & HAPTIC_FLAG_RAMP_LIMITED);
    run_until(fake_us + 100000u);
    CHECK(motor_duty[0] > 0 && motor_duty[0] <= 900); /* driven, within the cap */
    telemetry(43, 200.0f, 0.0f); /* speed out of range: clamped and flagged */
    coach_core_poll(&core);
    CHECK_EQ(host_receive(), 1);
    CHECK(got_payload[0][HAPTIC_OFF_FLAGS] & HAPTIC_FLAG_INPUT_CLAMPED);
}

static void test_bad_telemetry_never_drives(void) {
    uint8_t p[TELEMETRY_LEN] = {0};
    start_core(&erm);
    telemetry(1, 45.0f, NAN);
    telemetry(2, INFINITY, 3.0f);
    host_send(MSG_TELEMETRY, 3, p, TELEMETRY_LEN - 4); /* short */
    run_until(fake_us + 300000u);
    CHECK_EQ(host_receive(), 3);
    CHECK_EQ(got_type[0], MSG_ACK);
    CHECK_EQ(got_payload[0][ACK_OFF_STATUS], STATUS_BAD_VALUE);
    CHECK_EQ(got_payload[1][ACK_OFF_STATUS], STATUS_BAD_VALUE);
    CHECK_EQ(got_payload[2][ACK_OFF_STATUS], STATUS_BAD_LENGTH);
    CHECK_EQ(motor_duty[0] + motor_duty[1], 0);
    CHECK_EQ(core.cnt.value_errors, 2);
    CHECK_EQ(core.armed, 0); /* invalid frames do not feed the failsafe */
}

static void test_failsafe_timing(void) {
    start_core(&erm);
    uint64_t t0 = fake_us;
    for (int i = 0; i < 10; i++) { /* 20 Hz for 0.5 s */
        telemetry((uint16_t)i, 90.0f, 6.0f);
        run_until(t0 + (uint64_t)(i + 1) * 50000u);
    }
    CHECK(motor_duty[0] > 0);
    uint64_t last = t0 + 9u * 50000u; /* the last frame was handled at its send time */
    (void)host_receive();
    run_until(last + 149000u);
    CHECK(motor_duty[0] > 0 || core.haptics.motor[0].duty > 0); /* still alive at 149 ms */
    CHECK_EQ(core.fault, FAULT_NONE);
    run_until(last + 152000u);
    CHECK_EQ(motor_duty[0], 0);
    CHECK_EQ(motor_duty[1], 0);
    CHECK_EQ(core.fault, FAULT_STALE_TELEMETRY);
    CHECK_EQ(core.cnt.failsafe_trips, 1);
    int n = host_receive();
    CHECK(n >= 1);
    CHECK_EQ(got_type[n - 1], MSG_FAULT);
    CHECK_EQ(got_payload[n - 1][FAULT_OFF_FAULT], FAULT_STALE_TELEMETRY);
    run_until(fake_us + 1000000u);
    CHECK_EQ(core.cnt.failsafe_trips, 1); /* trips once per stall */
    CHECK_EQ(motor_duty[0], 0);
    telemetry(99, 90.0f, 6.0f); /* recovery: the next HAPTIC says the failsafe had fired */
    coach_core_poll(&core);
    CHECK_EQ(host_receive(), 1);
    CHECK(got_payload[0][HAPTIC_OFF_FLAGS] & HAPTIC_FLAG_FAILSAFE);
    CHECK_EQ(core.fault, FAULT_NONE);
}

static void test_counters_and_errors(void) {
    uint8_t wire[64];
    size_t n = 0;
    start_core(&erm);
    CHECK_EQ(proto_frame_build(MSG_STATUS_REQ, 1, NULL, 0, wire, sizeof wire, &n), PROTO_OK);
    wire[2] ^= 0x01; /* corrupt: CRC (or COBS) error */
    memcpy(rx_buf + rx_len, wire, n);
    rx_len += n;
    host_send(0x7E, 2, NULL, 0);          /* unknown type */
    host_send(MSG_STATUS_REQ, 3, NULL, 0);
    coach_core_poll(&core);
    int got = host_receive();
    CHECK_EQ(got, 2);
    CHECK_EQ(got_type[0], MSG_ACK);
    CHECK_EQ(got_payload[0][ACK_OFF_STATUS], STATUS_UNKNOWN_TYPE);
    CHECK_EQ(got_type[1], MSG_STATUS);
    CHECK_EQ(core.cnt.crc_errors + core.cnt.frame_errors, 2);
    CHECK_EQ(core_get_u32(&got_payload[1][STATUS_OFF_FRAMES_OK]), 1);
}

static void test_wrong_version(void) {
    uint8_t frame[PROTO_MAX_FRAME], wire[PROTO_MAX_ENCODED + 1];
    size_t n = 0;
    start_core(&erm);
    frame[0] = 9;
    frame[1] = MSG_STATUS_REQ;
    core_put_u16(&frame[2], 77);
    frame[4] = 0;
    core_put_u16(&frame[5], proto_crc16(frame, 5));
    CHECK_EQ(proto_cobs_encode(frame, 7, wire, sizeof wire, &n), PROTO_OK);
    wire[n++] = 0;
    memcpy(rx_buf + rx_len, wire, n);
    rx_len += n;
    coach_core_poll(&core);
    CHECK_EQ(host_receive(), 1);
    CHECK_EQ(got_type[0], MSG_ACK);
    CHECK_EQ(got_seq[0], 77);
    CHECK_EQ(got_payload[0][ACK_OFF_STATUS], STATUS_BAD_VERSION);
}

static void test_tx_never_blocks(void) {
    start_core(&erm);
    tx_accept = 0; /* the driver takes nothing: replies pile up in the ring, the loop goes on */
    for (int i = 0; i < 40; i++) host_send(MSG_STATUS_REQ, (uint16_t)i, NULL, 0);
    coach_core_poll(&core);
    coach_core_poll(&core);
    CHECK_EQ(tx_len, 0);
    CHECK(core.cnt.tx_dropped > 0); /* 40 STATUS replies do not fit 1 KiB: whole frames dropped */
    tx_accept = 7;                  /* a slow driver: partial writes */
    run_until(fake_us + 100000u);
    int n = host_receive();
    CHECK(n >= 20); /* about 1 KiB of 44-byte STATUS frames were kept */
    CHECK_EQ((uint32_t)n + core.cnt.tx_dropped, 40);
    CHECK_EQ(host_dec.n, 0); /* no partial frame left behind */
}

static void test_log_and_reset(void) {
    start_core(&erm);
    host_send(MSG_LOG_REQ, 1, NULL, 0);
    coach_core_poll(&core);
    CHECK_EQ(host_receive(), 1);
    CHECK_EQ(got_type[0], MSG_LOG);
    CHECK_EQ(got_payload[0][LOG_OFF_FLAGS] & 1, 1); /* more lines pending after the first */
    CHECK(got_len[0] > LOG_LEN);
    /* The length rule: a request with a payload its type does not have is refused, not acted on. */
    const uint8_t junk[31] = {1};
    uint32_t errors = core.cnt.frame_errors;
    host_send(MSG_RESET, 3, junk, 1);
    host_send(MSG_RESET, 4, junk, sizeof junk);
    host_send(MSG_STATUS_REQ, 5, junk, 2);
    host_send(MSG_LOG_REQ, 6, junk, 3);
    coach_core_poll(&core);
    CHECK_EQ(host_receive(), 4);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(got_type[i], MSG_ACK);
        CHECK_EQ(got_payload[i][ACK_OFF_STATUS], STATUS_BAD_LENGTH);
    }
    CHECK_EQ(core.cnt.frame_errors, errors + 4u);
    run_until(fake_us + 100000u);
    CHECK_EQ(reset_calls, 0);
    host_send(MSG_RESET, 2, NULL, 0);
    coach_core_poll(&core);
    CHECK_EQ(host_receive(), 1);
    CHECK_EQ(got_payload[0][ACK_OFF_STATUS], STATUS_OK);
    CHECK_EQ(reset_calls, 1); /* the ACK left first, then the reset */
}

static void test_selftest_failure_disables_motors(void) {
    int8_t saved = test_model_golden_out[2];
    test_model_golden_out[2] = 5; /* a golden vector that the model does not reproduce */
    start_core(&erm);
    CHECK_EQ(coach_core_selftest_ok(&core), 0);
    CHECK_EQ(core.fault, FAULT_SELFTEST_FAILED);
    telemetry(1, 90.0f, 6.0f);
    run_until(fake_us + 300000u);
    CHECK_EQ(host_receive(), 1);
    CHECK_EQ(got_type[0], MSG_HAPTIC);
    CHECK(got_payload[0][HAPTIC_OFF_FLAGS] & HAPTIC_FLAG_MOTORS_DISABLED);
    CHECK_EQ(motor_duty[0] + motor_duty[1], 0);
    test_model_golden_out[2] = saved;
}

static void test_model_update_rejects_garbage(void) {
    uint8_t begin[MODEL_BEGIN_LEN] = {0}, chunk[MODEL_CHUNK_LEN + 16];
    static uint8_t before[2][sizeof slot_mem[0]];
    start_core(&erm);
    memset(slot_mem[0], 0xA5, sizeof slot_mem[0]); /* something an erase would wipe */
    memcpy(before, slot_mem, sizeof before);
    host_send(MSG_MODEL_CHUNK, 1, chunk, sizeof chunk); /* chunk with no update in progress */
    core_put_u32(&begin[MODEL_BEGIN_OFF_MODEL_SIZE], 0x7FFFFFFFu);
    host_send(MSG_MODEL_BEGIN, 2, begin, sizeof begin); /* no magic */
    memcpy(begin, PROTO_MANIFEST_MAGIC, 4);
    begin[MODEL_BEGIN_OFF_FORMAT] = PROTO_MANIFEST_FORMAT;
    host_send(MSG_MODEL_BEGIN, 3, begin, sizeof begin); /* no trusted key id */
    core_put_u32(&begin[MODEL_BEGIN_OFF_KEY_ID], COACH_TRUSTED_KEY_ID);
    host_send(MSG_MODEL_BEGIN, 4, begin, sizeof begin); /* trusted key id, no signature */
    host_send(MSG_MODEL_COMMIT, 5, NULL, 0);
    host_send(MSG_MODEL_BEGIN, 6, begin, 3);              /* truncated */
    host_send(MSG_MODEL_CONFIRM, 7, NULL, 0);             /* nothing on trial */
    for (int i = 0; i < 4; i++) coach_core_poll(&core);  /* a poll reads at most 512 bytes */
    CHECK_EQ(host_receive(), 7);
    CHECK(got_payload[0][ACK_OFF_STATUS] != STATUS_OK);
    CHECK_EQ(got_payload[1][ACK_OFF_STATUS], STATUS_BAD_VALUE);
    CHECK_EQ(got_payload[2][ACK_OFF_STATUS], STATUS_UNTRUSTED_KEY);
    CHECK_EQ(got_payload[3][ACK_OFF_STATUS], STATUS_BAD_SIGNATURE);
    CHECK(got_payload[4][ACK_OFF_STATUS] != STATUS_OK);
    CHECK_EQ(got_payload[5][ACK_OFF_STATUS], STATUS_BAD_LENGTH);
    CHECK_EQ(got_payload[6][ACK_OFF_STATUS], STATUS_BAD_STATE);
    CHECK(core.model == &coach_default_model);
    CHECK(memcmp(before, slot_mem, sizeof before) == 0); /* nothing erased, nothing written */
}

const ctest_case_t ctest_cases[] = {
    {"crc", test_crc},
    {"cobs_roundtrip", test_cobs_roundtrip},
    {"cobs_malformed", test_cobs_malformed},
    {"frame_parse_errors", test_frame_parse_errors},
    {"decoder_resync", test_decoder_resync},
    {"haptics_cap_and_ramp", test_haptics_cap_and_ramp},
    {"haptics_max_on_time", test_haptics_max_on_time},
    {"haptics_freq_mapping", test_haptics_freq_mapping},
    {"hello_identity", test_hello_identity},
    {"telemetry_haptic", test_telemetry_haptic},
    {"bad_telemetry_never_drives", test_bad_telemetry_never_drives},
    {"failsafe_timing", test_failsafe_timing},
    {"counters_and_errors", test_counters_and_errors},
    {"wrong_version", test_wrong_version},
    {"tx_never_blocks", test_tx_never_blocks},
    {"log_and_reset", test_log_and_reset},
    {"selftest_failure_disables_motors", test_selftest_failure_disables_motors},
    {"model_update_rejects_garbage", test_model_update_rejects_garbage},
};
const int ctest_case_count = (int)(sizeof ctest_cases / sizeof ctest_cases[0]);
