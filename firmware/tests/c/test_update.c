/* Unit tests of the signed update manifest (update_manifest.c + libsodium), on the host and on
 * rv32 under QEMU: the golden MODEL_BEGIN frame (host/protocol/golden_frames.json, signed with the
 * development key) passes the signature check, and every single-bit change of it is refused. */
#include <string.h>

#include "coach_engine.h"
#include "ctest.h"
#include "feature_schema.h"
#include "golden_manifest.h"
#include "update_manifest.h"

static update_unit_t esp32dev_unit(void) {
    static const uint8_t id[PROTO_UNIT_ID_LEN] = {2, 0x24, 0xa1, 0xb2, 0xc3, 0xd4, 0, 0};
    update_unit_t u;
    u.board_id = "esp32dev";
    u.unit_id = id;
    u.schema_hash = SCHEMA_HASH32;
    u.engine_version = COACH_ENGINE_VERSION;
    u.capacity = 65536u - 2048u;
    u.version_floor = 0;
    return u;
}

static int check(const uint8_t *raw, const update_unit_t *u) {
    update_manifest_t m;
    int st = manifest_parse(raw, MODEL_BEGIN_LEN, &m);
    return st != STATUS_OK ? st : manifest_check(&m, u);
}

static void test_golden_manifest_verifies(void) {
    update_unit_t u = esp32dev_unit();
    update_manifest_t m;
    CHECK_EQ(check(golden_manifest, &u), STATUS_OK);
    CHECK_EQ(manifest_parse(golden_manifest, MODEL_BEGIN_LEN, &m), STATUS_OK);
    CHECK_EQ(m.model_size, 10880u);
    CHECK_EQ(m.model_version, 7u);
    CHECK_EQ(manifest_next_floor(&m, 3u), 7u);
    CHECK_EQ(manifest_next_floor(&m, 9u), 9u);
    CHECK_EQ(manifest_parse(golden_manifest, MODEL_BEGIN_LEN - 1u, &m), STATUS_BAD_LENGTH);
}

static void test_unit_checks_in_order(void) {
    update_unit_t u = esp32dev_unit();
    u.board_id = "test-erm";
    CHECK_EQ(check(golden_manifest, &u), STATUS_WRONG_BOARD);
    u = esp32dev_unit();
    u.schema_hash ^= 1u;
    CHECK_EQ(check(golden_manifest, &u), STATUS_INCOMPATIBLE);
    u = esp32dev_unit();
    u.capacity = 10879u;
    CHECK_EQ(check(golden_manifest, &u), STATUS_TOO_LARGE);
    u = esp32dev_unit();
    u.version_floor = 7u;
    CHECK_EQ(check(golden_manifest, &u), STATUS_OK); /* reinstalling the same version is allowed */
    u.version_floor = 8u;
    CHECK_EQ(check(golden_manifest, &u), STATUS_DOWNGRADE);
}

/* Every single-bit change anywhere in the 160 bytes is refused; none is taken for valid. */
static void test_every_bit_flip_is_refused(void) {
    update_unit_t u = esp32dev_unit();
    uint8_t m[MODEL_BEGIN_LEN];
    int refused = 0;
    for (unsigned i = 0; i < MODEL_BEGIN_LEN; i++) {
        for (unsigned b = 0; b < 8; b++) {
            int st;
            memcpy(m, golden_manifest, sizeof m);
            m[i] ^= (uint8_t)(1u << b);
            st = check(m, &u);
            refused += st != STATUS_OK;
            if (i >= MODEL_BEGIN_OFF_KEY_ID && i < MODEL_BEGIN_OFF_KEY_ID + 4u) {
                CHECK_EQ(st, STATUS_UNTRUSTED_KEY);
            } else if (i < MODEL_BEGIN_OFF_MODEL_SIZE && i != MODEL_BEGIN_OFF_FLAGS &&
                       i != MODEL_BEGIN_OFF_ENGINE_VERSION) {
                CHECK_EQ(st, STATUS_BAD_VALUE); /* magic, format, reserved */
            } else {
                CHECK_EQ(st, STATUS_BAD_SIGNATURE);
            }
        }
    }
    CHECK_EQ(refused, MODEL_BEGIN_LEN * 8);
}

const ctest_case_t ctest_update_cases[] = {
    {"manifest_golden_verifies", test_golden_manifest_verifies},
    {"manifest_unit_checks", test_unit_checks_in_order},
    {"manifest_every_bit_flip_refused", test_every_bit_flip_is_refused},
};
const int ctest_update_case_count = (int)(sizeof ctest_update_cases / sizeof ctest_update_cases[0]);
