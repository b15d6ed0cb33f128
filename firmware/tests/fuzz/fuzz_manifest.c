/* libFuzzer target: the signed-manifest parser and checks (MODEL_BEGIN's payload) must never crash
 * or read out of bounds on any input, and must never accept a manifest that the trusted key did not
 * sign: an input that is not byte-for-byte a correctly signed manifest can only pass if libsodium
 * verified its signature, so any STATUS_OK is double-checked here with a second, direct verify. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sodium/crypto_sign_ed25519.h"
#include "trusted_key.h"
#include "update_manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint8_t id[PROTO_UNIT_ID_LEN] = {2, 1, 2, 3, 4, 5, 0, 0};
    update_manifest_t m;
    update_unit_t u;
    uint8_t copy[PROTO_MAX_PAYLOAD];
    int st;
    if (size > sizeof copy) return 0;
    memcpy(copy, data, size); /* exact-size buffer semantics: ASan catches reads past `size` below */
    u.board_id = "esp32dev";
    u.unit_id = id;
    u.schema_hash = size >= 20 ? (uint32_t)data[16] | ((uint32_t)data[17] << 8) | ((uint32_t)data[18] << 16) |
                                    ((uint32_t)data[19] << 24)
                              : 0u; /* let the fuzzer reach the checks after the signature */
    u.engine_version = 1;
    u.capacity = 63488u;
    u.version_floor = size > 0 ? data[0] : 0u;
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL) return 0;
    memcpy(buf, copy, size);
    st = manifest_parse(buf, size, &m);
    if (st == STATUS_OK) {
        if (size != MODEL_BEGIN_LEN) abort();
        st = manifest_check(&m, &u);
        if (st == STATUS_OK &&
            crypto_sign_ed25519_verify_detached(buf + MODEL_BEGIN_OFF_SIGNATURE, buf, MANIFEST_SIGNED_LEN,
                                                COACH_TRUSTED_KEY) != 0)
            abort(); /* accepted without a valid signature */
        (void)manifest_next_floor(&m, u.version_floor);
    } else if (st != STATUS_BAD_LENGTH && st != STATUS_BAD_VALUE) {
        abort(); /* parse only ever answers these */
    }
    free(buf);
    return 0;
}
