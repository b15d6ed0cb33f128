#include "protocol.h"

#include <string.h>

uint16_t proto_crc16(const uint8_t *data, size_t len) {
    uint16_t crc = 0xFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint16_t)data[i] << 8);
        for (int b = 0; b < 8; b++) {
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

int proto_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len) {
    size_t code_pos = 0, o = 1;
    uint8_t code = 1;
    ENSURE(cap >= 1, PROTO_ERR_NO_SPACE);
    for (size_t i = 0; i < len; i++) {
        if (in[i] != 0) {
            ENSURE(o < cap, PROTO_ERR_NO_SPACE);
            out[o++] = in[i];
            code++;
        }
        if (in[i] == 0 || code == 0xFF) {
            /* Close the block. After a full 254-byte block with no input left, no new block. */
            out[code_pos] = code;
            code = 1;
            if (in[i] == 0 || i + 1 < len) {
                ENSURE(o < cap, PROTO_ERR_NO_SPACE);
                code_pos = o++;
            } else {
                *out_len = o;
                return PROTO_OK;
            }
        }
    }
    out[code_pos] = code;
    *out_len = o;
    return PROTO_OK;
}

int proto_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len) {
    size_t i = 0, o = 0;
    while (i < len) {
        uint8_t code = in[i++];
        ENSURE(code != 0, PROTO_ERR_COBS);
        ENSURE((size_t)(code - 1) <= len - i, PROTO_ERR_COBS);
        for (uint8_t k = 1; k < code; k++) {
            ENSURE(in[i] != 0, PROTO_ERR_COBS);
            ENSURE(o < cap, PROTO_ERR_NO_SPACE);
            out[o++] = in[i++];
        }
        if (code != 0xFF && i < len) {
            ENSURE(o < cap, PROTO_ERR_NO_SPACE);
            out[o++] = 0;
        }
    }
    *out_len = o;
    return PROTO_OK;
}

int proto_frame_build(uint8_t type, uint16_t seq, const uint8_t *payload, size_t len, uint8_t *out,
                      size_t cap, size_t *out_len) {
    uint8_t frame[PROTO_MAX_FRAME];
    size_t enc_len = 0;
    ENSURE(len <= PROTO_MAX_PAYLOAD, PROTO_ERR_TOO_LARGE);
    frame[0] = PROTO_VERSION;
    frame[1] = type;
    core_put_u16(&frame[2], seq);
    frame[4] = (uint8_t)len;
    if (len) memcpy(&frame[PROTO_HEADER_SIZE], payload, len);
    core_put_u16(&frame[PROTO_HEADER_SIZE + len], proto_crc16(frame, PROTO_HEADER_SIZE + len));
    ENSURE(cap >= 1, PROTO_ERR_NO_SPACE);
    RETURN_IF_ERROR(proto_cobs_encode(frame, PROTO_HEADER_SIZE + len + PROTO_CRC_SIZE, out, cap - 1,
                                      &enc_len));
    out[enc_len] = 0x00;
    *out_len = enc_len + 1;
    return PROTO_OK;
}

int proto_frame_parse(const uint8_t *decoded, size_t len, proto_frame_t *f) {
    ENSURE(len >= PROTO_HEADER_SIZE + PROTO_CRC_SIZE, PROTO_ERR_SHORT);
    ENSURE(len <= PROTO_MAX_FRAME, PROTO_ERR_TOO_LARGE);
    ENSURE((size_t)decoded[4] + PROTO_HEADER_SIZE + PROTO_CRC_SIZE == len, PROTO_ERR_LENGTH);
    ENSURE(proto_crc16(decoded, len - PROTO_CRC_SIZE) == core_get_u16(&decoded[len - PROTO_CRC_SIZE]),
           PROTO_ERR_CRC);
    f->version = decoded[0];
    f->type = decoded[1];
    f->seq = core_get_u16(&decoded[2]);
    f->len = decoded[4];
    f->payload = &decoded[PROTO_HEADER_SIZE];
    return PROTO_OK;
}

void proto_decoder_init(proto_decoder_t *d) {
    d->n = 0;
    d->overflow = 0;
}

int proto_decoder_feed(proto_decoder_t *d, uint8_t byte, proto_frame_t *f) {
    if (byte != 0x00) {
        if (d->n < sizeof d->raw) {
            d->raw[d->n++] = byte;
        } else {
            d->overflow = 1; /* keep dropping until the delimiter: that is the resync point */
        }
        return PROTO_NEED_MORE;
    }
    /* Delimiter: judge the collected run, then start afresh whatever the outcome. */
    uint16_t n = d->n;
    uint8_t overflow = d->overflow;
    size_t dec_len = 0;
    d->n = 0;
    d->overflow = 0;
    if (overflow) return PROTO_ERR_TOO_LARGE;
    if (n == 0) return PROTO_NEED_MORE;
    int rc = proto_cobs_decode(d->raw, n, d->frame, sizeof d->frame, &dec_len);
    if (rc == PROTO_ERR_NO_SPACE) return PROTO_ERR_TOO_LARGE;
    RETURN_IF_ERROR(rc);
    RETURN_IF_ERROR(proto_frame_parse(d->frame, dec_len, f));
    return PROTO_FRAME_READY;
}
