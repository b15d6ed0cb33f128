/* libFuzzer target: the byte-wise stream decoder must never crash, read out of bounds or hang on
 * any input, and every frame it accepts must survive a build/decode round trip unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    proto_decoder_t d;
    proto_frame_t f;
    proto_decoder_init(&d);
    for (size_t i = 0; i < size; i++) {
        int r = proto_decoder_feed(&d, data[i], &f);
        if (r == PROTO_FRAME_READY) {
            uint8_t wire[PROTO_MAX_ENCODED + 1], payload[PROTO_MAX_PAYLOAD];
            size_t n = 0;
            proto_decoder_t d2;
            proto_frame_t g;
            int r2 = PROTO_NEED_MORE;
            if (f.len > PROTO_MAX_PAYLOAD) abort();
            memcpy(payload, f.payload, f.len); /* f.payload points into d, which the next call reuses */
            if (proto_frame_build(f.type, f.seq, payload, f.len, wire, sizeof wire, &n) != PROTO_OK) abort();
            if (f.version != PROTO_VERSION) continue; /* build always writes our own version */
            proto_decoder_init(&d2);
            for (size_t k = 0; k < n; k++) r2 = proto_decoder_feed(&d2, wire[k], &g);
            if (r2 != PROTO_FRAME_READY || g.type != f.type || g.seq != f.seq || g.len != f.len ||
                memcmp(g.payload, payload, f.len) != 0)
                abort();
        } else if (r != PROTO_NEED_MORE && r >= 0) {
            abort(); /* unknown result code */
        }
    }
    return 0;
}
