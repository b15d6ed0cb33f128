/* See update_manifest.h. */
#include "update_manifest.h"

#include <string.h>

#include "coach_crypto.h"
#include "core_util.h"
#include "trusted_key.h"

typedef char manifest_fits_frame[(MODEL_BEGIN_LEN <= PROTO_MAX_PAYLOAD) ? 1 : -1];

int manifest_parse(const uint8_t *p, size_t len, update_manifest_t *m) {
    if (p == NULL || m == NULL || len != MODEL_BEGIN_LEN) return STATUS_BAD_LENGTH;
    if (memcmp(p + MODEL_BEGIN_OFF_MAGIC, PROTO_MANIFEST_MAGIC, 4) != 0 ||
        p[MODEL_BEGIN_OFF_FORMAT] != PROTO_MANIFEST_FORMAT || p[MODEL_BEGIN_OFF_RESERVED] != 0u)
        return STATUS_BAD_VALUE;
    memset(m, 0, sizeof *m);
    m->flags = p[MODEL_BEGIN_OFF_FLAGS];
    m->engine_version = p[MODEL_BEGIN_OFF_ENGINE_VERSION];
    m->model_size = core_get_u32(p + MODEL_BEGIN_OFF_MODEL_SIZE);
    m->model_version = core_get_u32(p + MODEL_BEGIN_OFF_MODEL_VERSION);
    m->schema_hash = core_get_u32(p + MODEL_BEGIN_OFF_SCHEMA_HASH);
    m->key_id = core_get_u32(p + MODEL_BEGIN_OFF_KEY_ID);
    memcpy(m->board, p + MODEL_BEGIN_OFF_BOARD, sizeof m->board);
    memcpy(m->model_id, p + MODEL_BEGIN_OFF_MODEL_ID, sizeof m->model_id);
    memcpy(m->sha256, p + MODEL_BEGIN_OFF_SHA256, sizeof m->sha256);
    memcpy(m->unit_id, p + MODEL_BEGIN_OFF_UNIT_ID, sizeof m->unit_id);
    m->raw = p;
    return STATUS_OK;
}

static int all_zero(const uint8_t *p, size_t n) {
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++) acc |= p[i];
    return acc == 0u;
}

int manifest_check(const update_manifest_t *m, const update_unit_t *u) {
    char board[PROTO_BOARD_ID_LEN];
    if (m == NULL || u == NULL || m->raw == NULL) return STATUS_BAD_VALUE;
    if (m->key_id != COACH_TRUSTED_KEY_ID) return STATUS_UNTRUSTED_KEY;
    if (!coach_ed25519_valid(m->raw + MODEL_BEGIN_OFF_SIGNATURE, m->raw, MANIFEST_SIGNED_LEN, COACH_TRUSTED_KEY))
        return STATUS_BAD_SIGNATURE;
    /* Everything below is signed, so it is what the key holder meant. */
    memset(board, 0, sizeof board);
    for (size_t i = 0; i < sizeof board && u->board_id[i] != '\0'; i++) board[i] = u->board_id[i];
    if (memcmp(board, m->board, sizeof board) != 0) return STATUS_WRONG_BOARD;
    if (!all_zero(m->unit_id, sizeof m->unit_id) &&
        (u->unit_id == NULL || memcmp(m->unit_id, u->unit_id, sizeof m->unit_id) != 0))
        return STATUS_WRONG_UNIT;
    if (m->schema_hash != u->schema_hash || m->engine_version != u->engine_version) return STATUS_INCOMPATIBLE;
    if (m->model_size == 0u) return STATUS_BAD_LENGTH;
    if (m->model_size > u->capacity) return STATUS_TOO_LARGE;
    if (m->model_version < u->version_floor && !(m->flags & PROTO_MANIFEST_FLAG_DOWNGRADE)) return STATUS_DOWNGRADE;
    return STATUS_OK;
}

uint32_t manifest_next_floor(const update_manifest_t *m, uint32_t floor) {
    if (m->flags & PROTO_MANIFEST_FLAG_DOWNGRADE) return m->model_version;
    return m->model_version > floor ? m->model_version : floor;
}
