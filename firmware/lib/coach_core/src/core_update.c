/* See core_update.h. */
#include "core_update.h"

#include <string.h>

#include "feature_schema.h"
#include "update_manifest.h"

static const char *refusal(int st) {
    switch (st) {
    case STATUS_BAD_SIGNATURE: return "update refused: bad signature";
    case STATUS_UNTRUSTED_KEY: return "update refused: untrusted key";
    case STATUS_DOWNGRADE: return "update refused: version below the floor";
    case STATUS_WRONG_BOARD: return "update refused: wrong board";
    case STATUS_WRONG_UNIT: return "update refused: bound to another unit";
    case STATUS_INCOMPATIBLE: return "update refused: incompatible model";
    case STATUS_HASH_MISMATCH: return "update refused: blob sha256 differs from the manifest";
    default: return "update refused";
    }
}

static int begin(coach_core_t *c, const proto_frame_t *f) {
    update_manifest_t m;
    update_unit_t u;
    int st = manifest_parse(f->payload, f->len, &m);
    if (st != STATUS_OK) return st;
    if (c->slots.capacity == 0u) return STATUS_STORAGE_ERROR;
    u.board_id = c->board->id;
    u.unit_id = c->has_unit_id ? c->unit_id : NULL;
    u.schema_hash = SCHEMA_HASH32;
    u.engine_version = COACH_ENGINE_VERSION;
    u.capacity = c->slots.capacity;
    u.version_floor = slots_floor(&c->slots);
    st = manifest_check(&m, &u);
    if (st != STATUS_OK) return st; /* nothing erased, nothing written */
    return slots_begin(&c->slots, m.model_size, m.sha256, m.model_id, m.model_version,
                       manifest_next_floor(&m, u.version_floor));
}

void core_update_handle(coach_core_t *c, const proto_frame_t *f) {
    static const uint8_t fixed_len[6] = {MODEL_BEGIN_LEN, MODEL_CHUNK_LEN, MODEL_COMMIT_LEN,
                                         MODEL_ABORT_LEN, MODEL_ROLLBACK_LEN, MODEL_CONFIRM_LEN};
    uint8_t idx = (uint8_t)(f->type - MSG_MODEL_BEGIN), active = 0;
    uint32_t value = 0;
    int st;
    int bad_len = f->type == MSG_MODEL_CHUNK
                      ? (f->len <= MODEL_CHUNK_LEN || f->len > MODEL_CHUNK_LEN + PROTO_MAX_CHUNK)
                      : f->len != fixed_len[idx];
    if (bad_len) {
        c->cnt.frame_errors++;
        core_send_ack(c, f, STATUS_BAD_LENGTH, 0);
        return;
    }
    switch (f->type) {
    case MSG_MODEL_BEGIN:
        st = begin(c, f);
        if (st != STATUS_OK) coach_core_log(c, COACH_LOG_WARN, refusal(st));
        break;
    case MSG_MODEL_CHUNK:
        st = slots_chunk(&c->slots, core_get_u32(&f->payload[MODEL_CHUNK_OFF_OFFSET]),
                         &f->payload[MODEL_CHUNK_LEN], (size_t)f->len - MODEL_CHUNK_LEN, &value);
        break;
    case MSG_MODEL_COMMIT:
    case MSG_MODEL_ROLLBACK:
        st = f->type == MSG_MODEL_COMMIT ? slots_commit(&c->slots, core_validate_blob, c, &active)
                                         : slots_rollback(&c->slots, core_validate_blob, c, &active);
        value = active;
        if (st == STATUS_OK) {
            c->trial_frames = 0;
            core_activate_model(c);
            coach_core_log(c, COACH_LOG_INFO,
                           f->type == MSG_MODEL_COMMIT ? "model committed: on trial" : "model rolled back");
        } else if (f->type == MSG_MODEL_COMMIT) {
            coach_core_log(c, COACH_LOG_WARN, refusal(st));
        }
        break;
    case MSG_MODEL_CONFIRM:
        st = slots_confirm(&c->slots);
        if (st == STATUS_OK) coach_core_log(c, COACH_LOG_INFO, "model confirmed by the host");
        value = slots_floor(&c->slots);
        break;
    default:
        st = slots_abort(&c->slots);
        break;
    }
    core_send_ack(c, f, (uint8_t)st, value);
}

void core_update_telemetry_done(coach_core_t *c, int ok) {
    if (!slots_on_trial(&c->slots)) return;
    if (!ok || !c->selftest_ok || c->fault != FAULT_NONE) {
        c->trial_frames = 0;
        return;
    }
    if (++c->trial_frames < PROTO_TRIAL_FRAMES) return;
    if (slots_confirm(&c->slots) == STATUS_OK) {
        coach_core_log(c, COACH_LOG_INFO, "model confirmed after its trial frames");
    } else {
        coach_core_log(c, COACH_LOG_ERROR, "model confirm failed: storage error");
    }
    c->trial_frames = 0;
}
