/* Wire codec: CRC-16/CCITT-FALSE, COBS, frame build/parse and a byte-wise stream decoder.
 *
 * Frame before COBS (little-endian): ver, type, seq(u16), len, payload[len], crc16 over all
 * previous bytes. On the wire: COBS(frame) followed by one 0x00 delimiter. Layouts and limits
 * come from the generated protocol_defs.h (source: host/protocol/spec.py).
 */
#ifndef MOTOCOACH_PROTOCOL_H
#define MOTOCOACH_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "core_util.h"
#include "protocol_defs.h"

/* Codec results (0 = ok). Negative so they never collide with byte counts. */
typedef enum {
    PROTO_OK = 0,
    PROTO_ERR_COBS = -1,      /* malformed COBS (a code byte points past the end, or a zero) */
    PROTO_ERR_SHORT = -2,     /* fewer bytes than header + CRC */
    PROTO_ERR_LENGTH = -3,    /* header len does not match the bytes received */
    PROTO_ERR_CRC = -4,       /* CRC mismatch */
    PROTO_ERR_TOO_LARGE = -5, /* frame larger than PROTO_MAX_ENCODED / PROTO_MAX_FRAME */
    PROTO_ERR_NO_SPACE = -6   /* caller's output buffer is too small */
} proto_result_t;

/* A decoded frame. payload points into the decoder's (or caller's) buffer. */
typedef struct {
    uint8_t version;
    uint8_t type;
    uint16_t seq;
    uint8_t len;
    const uint8_t *payload;
} proto_frame_t;

/* CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor. */
uint16_t proto_crc16(const uint8_t *data, size_t len);

/* COBS-encode len bytes into out (no delimiter). */
CORE_MUST_CHECK int proto_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                                      size_t *out_len);
/* COBS-decode len bytes (without the delimiter) into out. */
CORE_MUST_CHECK int proto_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                                      size_t *out_len);

/* Build the complete wire bytes of one frame (COBS + trailing 0x00) with version PROTO_VERSION.
 * Worst case size: PROTO_MAX_ENCODED + 1. */
CORE_MUST_CHECK int proto_frame_build(uint8_t type, uint16_t seq, const uint8_t *payload,
                                      size_t len, uint8_t *out, size_t cap, size_t *out_len);

/* Check header, length and CRC of a COBS-decoded frame. Does not judge the version or type:
 * the header layout is frozen across versions, so the caller can still answer the sender. */
CORE_MUST_CHECK int proto_frame_parse(const uint8_t *decoded, size_t len, proto_frame_t *f);

/* Byte-wise stream decoder: collects bytes up to each 0x00, decodes and checks the frame.
 * An oversized run is discarded up to the next 0x00 (resync); empty frames (0x00 0x00) are
 * ignored so a sender may flush with a lone 0x00. */
typedef struct {
    uint8_t raw[PROTO_MAX_ENCODED];
    uint8_t frame[PROTO_MAX_FRAME];
    uint16_t n;          /* bytes collected for the current frame */
    uint8_t overflow;    /* current frame exceeded PROTO_MAX_ENCODED: drop until 0x00 */
} proto_decoder_t;

#define PROTO_NEED_MORE 0
#define PROTO_FRAME_READY 1

void proto_decoder_init(proto_decoder_t *d);
/* Feed one byte. Returns PROTO_FRAME_READY with *f filled (payload valid until the next call),
 * PROTO_NEED_MORE, or a negative proto_result_t when a frame was discarded. */
CORE_MUST_CHECK int proto_decoder_feed(proto_decoder_t *d, uint8_t byte, proto_frame_t *f);

#endif /* MOTOCOACH_PROTOCOL_H */
