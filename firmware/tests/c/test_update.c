/* Unit tests of the signed update manifest (update_manifest.c + libsodium), on the host and on
 * rv32 under QEMU: the golden MODEL_BEGIN frame (host/protocol/golden_frames.json, signed with the
 * development key) passes the signature check, and every single-bit change of it is refused. */
#include <string.h>

#include "coach_engine.h"
#include "ctest.h"
#include "feature_schema.h"
#include "update_manifest.h"

/* The payload of golden frame "model_begin": board esp32dev, model version 7, 10880 bytes. */
static const uint8_t golden_manifest[MODEL_BEGIN_LEN] = {
    0x43, 0x4d, 0x46, 0x32, 0x01, 0x00, 0x01, 0x00, 0x80, 0x2a, 0x00, 0x00,
    0x07, 0x00, 0x00, 0x00, 0x49, 0x76, 0xf0, 0xdb, 0x42, 0x25, 0xdd, 0x96,
    0x65, 0x73, 0x70, 0x33, 0x32, 0x64, 0x65, 0x76, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x63, 0x6f, 0x61, 0x63, 0x68, 0x2d, 0x64, 0x65,
    0x6d, 0x6f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xa0, 0xa1, 0xa2, 0xa3,
    0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
    0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb,
    0xbc, 0xbd, 0xbe, 0xbf, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x9f, 0x4a, 0x09, 0xfc, 0xf6, 0x52, 0x40, 0x70, 0x39, 0x98, 0x61, 0xbc,
    0xc9, 0xf1, 0x1b, 0x00, 0x34, 0x69, 0x91, 0x0f, 0x63, 0x26, 0x14, 0x1e,
    0x54, 0x48, 0x90, 0x8f, 0x0f, 0x7f, 0xc2, 0x3e, 0xbd, 0x13, 0x93, 0xb5,
    0x1e, 0xaa, 0x72, 0xc1, 0xc0, 0x5c, 0x8b, 0xef, 0xd6, 0x5a, 0x60, 0x74,
    0xc1, 0x1a, 0x44, 0x37, 0xb9, 0xd7, 0x4c, 0x8b, 0x61, 0x84, 0xb1, 0x93,
    0x66, 0xb1, 0x1b, 0x08
};

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
