/* Model slots: see model_slots.h for the layout and the power-cut argument. */
#include "model_slots.h"

#include <string.h>

#include "sha256.h"
#include "slot_records.h"

#define RETURN_IF_ERROR(expr)      \
  do {                             \
    int rc_ = (expr);              \
    if (rc_ != STATUS_OK) return rc_; \
  } while (0)
#define ENSURE(cond, status)       \
  do {                             \
    if (!(cond)) return (status);  \
  } while (0)

static const uint8_t *slot_mem(const model_slots_t *s, unsigned slot) {
  return s->hal->slot_map((uint8_t)slot);
}

static int blob_matches(const uint8_t *mem, uint32_t len, const uint8_t *sha) {
  uint8_t got[COACH_SHA256_LEN];
  coach_sha256(mem + SLOTS_DATA_OFFSET, len, got);
  return memcmp(got, sha, COACH_SHA256_LEN) == 0;
}

static void scan_slot(model_slots_t *s, unsigned slot) {
  const uint8_t *mem = slot_mem(s, slot);
  uint8_t idx;
  s->seq[slot] = 0;
  s->len[slot] = 0;
  s->retired[slot] = 0;
  s->version[slot] = 0;
  if (mem == NULL) {
    s->state[slot] = SLOT_INVALID;
    return;
  }
  idx = rec_newest_model(s, slot);
  if (idx == NO_RECORD) {
    s->state[slot] = rec_all_erased(mem + SLOTS_DATA_OFFSET, s->capacity) ? SLOT_EMPTY : SLOT_INVALID;
    return;
  }
  {
    const uint8_t *r = mem + (uint32_t)idx * SLOTS_RECORD_SIZE;
    uint32_t len = rec_get_u32(r + REC_OFF_LENGTH);
    /* A torn or corrupted blob, or a model that was still on trial when the unit reset: never
     * booted (and never re-activated by a rollback). */
    if (r[REC_OFF_KIND] == REC_TRIAL || !blob_matches(mem, len, r + REC_OFF_SHA256)) {
      s->state[slot] = SLOT_INVALID;
      return;
    }
    s->state[slot] = SLOT_VALID;
    s->seq[slot] = rec_get_u32(r + REC_OFF_SEQ);
    s->len[slot] = len;
    s->version[slot] = rec_get_u32(r + REC_OFF_VERSION);
    s->retired[slot] = (uint8_t)(r[REC_OFF_KIND] == REC_RETIRE);
  }
}

static int bootable(const model_slots_t *s, unsigned slot) {
  return s->state[slot] == SLOT_VALID && !s->retired[slot];
}

/* Boot choice: the bootable slot with the newest record; a retired slot is never booted. */
static void pick_active(model_slots_t *s) {
  s->active = SLOTS_ACTIVE_FACTORY;
  if (bootable(s, 0)) s->active = SLOTS_ACTIVE_A;
  if (bootable(s, 1) && (s->active == SLOTS_ACTIVE_FACTORY || s->seq[1] > s->seq[0]))
    s->active = SLOTS_ACTIVE_B;
}

static int supported(const model_slots_t *s) { return s->hal != NULL && s->capacity > 0u; }

int slots_init(model_slots_t *s, const coach_hal_t *hal) {
  memset(s, 0, sizeof *s);
  s->hal = hal;
  s->state[0] = s->state[1] = SLOT_EMPTY;
  ENSURE(hal != NULL && hal->slot_map != NULL && hal->slot_erase != NULL && hal->slot_write != NULL &&
             hal->slot_size > SLOTS_DATA_OFFSET,
         STATUS_STORAGE_ERROR);
  s->capacity = hal->slot_size - SLOTS_DATA_OFFSET;
  scan_slot(s, 0);
  scan_slot(s, 1);
  s->floor = s->top_seq[1] > s->top_seq[0] ? s->slot_floor[1] : s->slot_floor[0];
  pick_active(s);
  return STATUS_OK;
}

static int map_validate(int rc) {
  if (rc == 0) return STATUS_OK;
  return rc == STATUS_INCOMPATIBLE ? STATUS_INCOMPATIBLE : STATUS_SELFTEST_FAILED;
}

/* Append a model record of `kind` for `slot`. Only if that succeeds does the slot become active
 * (ACTIVATE, TRIAL) or the factory model take over (RETIRE). */
static int write_record(model_slots_t *s, unsigned slot, uint8_t kind, uint32_t len, const uint8_t *sha,
                        const char *model_id, uint32_t version) {
  slot_record_t r;
  r.kind = kind;
  r.len = len;
  r.sha256 = sha;
  r.model_id = model_id;
  r.version = version;
  RETURN_IF_ERROR(rec_append(s, slot, &r));
  s->seq[slot] = s->max_seq;
  s->len[slot] = len;
  s->version[slot] = version;
  s->state[slot] = SLOT_VALID;
  s->retired[slot] = (uint8_t)(kind == REC_RETIRE);
  s->active = kind == REC_RETIRE ? SLOTS_ACTIVE_FACTORY : (uint8_t)(slot + 1u);
  s->trial = (uint8_t)(kind == REC_TRIAL);
  return STATUS_OK;
}

/* Before erasing `target`: unless the other slot's newest record already carries the floor,
 * append a FLOOR record there (erasing that slot first only when it is not running and has no
 * room), so that after the erase the newest record still carries it. */
static int keep_floor(model_slots_t *s, unsigned target) {
  unsigned o = 1u - target;
  slot_record_t r;
  if (s->slot_floor[o] == s->floor) return STATUS_OK;
  ENSURE(slot_mem(s, o) != NULL, STATUS_STORAGE_ERROR);
  if (s->next_record[o] >= SLOTS_MAX_RECORDS) {
    ENSURE(s->active != o + 1u, STATUS_STORAGE_ERROR);
    ENSURE(s->hal->slot_erase((uint8_t)o) == 0, STATUS_STORAGE_ERROR);
    scan_slot(s, o);
  }
  memset(&r, 0, sizeof r);
  r.kind = REC_FLOOR;
  return rec_append(s, o, &r);
}

/* The slot an update writes: never the active one. With the factory model running, a slot that
 * still holds a model is one a rollback retired; it is overwritten first, so that a rollback
 * right after this update returns to the factory model again. */
static unsigned update_target(const model_slots_t *s) {
  if (s->active == SLOTS_ACTIVE_A) return 1u;
  if (s->active == SLOTS_ACTIVE_B) return 0u;
  return (s->state[1] == SLOT_VALID && s->state[0] != SLOT_VALID) ? 1u : 0u;
}

static void end_update(model_slots_t *s, uint8_t slot_state) {
  if (s->writing != 0u) s->state[s->writing - 1u] = slot_state;
  s->writing = 0;
  s->total = 0;
  s->received = 0;
}

int slots_begin(model_slots_t *s, uint32_t total, const uint8_t sha256[32], const char model_id[16],
                uint32_t version, uint32_t new_floor) {
  unsigned t;
  int rc;
  ENSURE(supported(s), STATUS_STORAGE_ERROR);
  ENSURE(sha256 != NULL && model_id != NULL, STATUS_BAD_VALUE);
  ENSURE(total > 0u, STATUS_BAD_LENGTH);
  ENSURE(total <= s->capacity, STATUS_TOO_LARGE);
  /* The previous model is the way back from a trial: it is not overwritten before a confirm. */
  ENSURE(!s->trial, STATUS_BAD_STATE);
  end_update(s, SLOT_INVALID);
  t = update_target(s);
  rc = keep_floor(s, t);
  if (rc != STATUS_OK) return rc;
  s->state[t] = SLOT_WRITING;
  s->seq[t] = 0;
  s->len[t] = 0;
  s->retired[t] = 0;
  s->writing = (uint8_t)(t + 1u);
  if (s->hal->slot_erase((uint8_t)t) != 0) {
    end_update(s, SLOT_INVALID);
    return STATUS_STORAGE_ERROR;
  }
  s->next_record[t] = 0;
  s->slot_floor[t] = 0;
  s->version[t] = 0;
  s->new_version = version;
  s->new_floor = new_floor;
  s->total = total;
  s->received = 0;
  memcpy(s->sha256, sha256, sizeof s->sha256);
  memcpy(s->model_id, model_id, sizeof s->model_id);
  return STATUS_OK;
}

int slots_chunk(model_slots_t *s, uint32_t offset, const uint8_t *data, size_t len, uint32_t *received) {
  int rc = STATUS_OK;
  if (received != NULL) *received = s->received;
  ENSURE(s->writing != 0u, STATUS_BAD_STATE);
  ENSURE(data != NULL && len > 0u, STATUS_BAD_LENGTH);
  ENSURE(offset == s->received, STATUS_BAD_OFFSET);
  ENSURE(len <= (size_t)(s->total - s->received), STATUS_BAD_LENGTH);
  if (s->hal->slot_write((uint8_t)(s->writing - 1u), SLOTS_DATA_OFFSET + offset, data, len) != 0) {
    end_update(s, SLOT_INVALID);
    rc = STATUS_STORAGE_ERROR;
  } else {
    s->received += (uint32_t)len;
  }
  if (received != NULL) *received = s->received;
  return rc;
}

int slots_commit(model_slots_t *s, slot_validate_fn validate, void *ctx, uint8_t *active_slot) {
  unsigned t;
  const uint8_t *mem;
  int rc;
  ENSURE(s->writing != 0u, STATUS_BAD_STATE);
  ENSURE(validate != NULL, STATUS_BAD_VALUE);
  ENSURE(s->received == s->total, STATUS_BAD_LENGTH);
  t = s->writing - 1u;
  mem = slot_mem(s, t);
  if (mem == NULL) {
    end_update(s, SLOT_INVALID);
    return STATUS_STORAGE_ERROR;
  }
  if (!blob_matches(mem, s->total, s->sha256)) { /* re-read from storage, not the RAM copy */
    end_update(s, SLOT_INVALID);
    return STATUS_HASH_MISMATCH;
  }
  rc = map_validate(validate(mem + SLOTS_DATA_OFFSET, s->total, ctx));
  if (rc == STATUS_OK) rc = write_record(s, t, REC_TRIAL, s->total, s->sha256, s->model_id, s->new_version);
  if (rc != STATUS_OK) {
    end_update(s, SLOT_INVALID);
    return rc;
  }
  s->trial_floor = s->new_floor;
  s->writing = 0;
  s->total = 0;
  s->received = 0;
  if (active_slot != NULL) *active_slot = s->active;
  return STATUS_OK;
}

int slots_confirm(model_slots_t *s) {
  unsigned slot;
  uint32_t old_floor = s->floor;
  int rc;
  ENSURE(supported(s), STATUS_STORAGE_ERROR);
  ENSURE(s->trial && s->active != SLOTS_ACTIVE_FACTORY, STATUS_BAD_STATE);
  slot = s->active - 1u;
  s->floor = s->trial_floor; /* written into the ACTIVATE record: the new floor is durable with it */
  rc = write_record(s, slot, REC_ACTIVATE, s->len[slot], s->sha256, s->model_id, s->version[slot]);
  if (rc != STATUS_OK) {
    s->floor = old_floor;
    s->trial = 1;
    s->active = (uint8_t)(slot + 1u);
  }
  return rc;
}

uint8_t slots_on_trial(const model_slots_t *s) { return s->trial; }

uint32_t slots_floor(const model_slots_t *s) { return s->floor; }

uint32_t slots_active_version(const model_slots_t *s) {
  return s->active == SLOTS_ACTIVE_FACTORY ? 0u : s->version[s->active - 1u];
}

int slots_abort(model_slots_t *s) {
  ENSURE(supported(s), STATUS_STORAGE_ERROR);
  end_update(s, s->received > 0u ? SLOT_INVALID : SLOT_EMPTY);
  return STATUS_OK;
}

/* Append a record of `kind` that repeats the newest record of `slot` (same blob, length, id). */
static int append_same(model_slots_t *s, unsigned slot, uint8_t kind) {
  const uint8_t *mem = slot_mem(s, slot);
  const uint8_t *r;
  uint8_t idx;
  int rc;
  ENSURE(mem != NULL, STATUS_STORAGE_ERROR);
  idx = rec_newest_model(s, slot);
  ENSURE(idx != NO_RECORD, STATUS_NO_VALID_SLOT);
  r = mem + (uint32_t)idx * SLOTS_RECORD_SIZE;
  rc = write_record(s, slot, kind, s->len[slot], r + REC_OFF_SHA256, (const char *)(r + REC_OFF_MODEL_ID),
                    rec_get_u32(r + REC_OFF_VERSION));
  if (rc != STATUS_OK) {
    scan_slot(s, slot); /* a failed append leaves the slot as it was (or torn: not newer) */
    pick_active(s);
  }
  return rc;
}

/* Make `slot` active again: its blob must still verify and pass validate. */
static int reactivate(model_slots_t *s, unsigned slot, slot_validate_fn validate, void *ctx) {
  const uint8_t *mem;
  scan_slot(s, slot); /* storage may have changed since boot: verify again */
  ENSURE(s->state[slot] == SLOT_VALID, STATUS_NO_VALID_SLOT);
  mem = slot_mem(s, slot);
  RETURN_IF_ERROR(map_validate(validate(mem + SLOTS_DATA_OFFSET, s->len[slot], ctx)));
  return append_same(s, slot, REC_ACTIVATE);
}

int slots_rollback(model_slots_t *s, slot_validate_fn validate, void *ctx, uint8_t *active_slot) {
  unsigned other, pick;
  int rc;
  ENSURE(supported(s), STATUS_STORAGE_ERROR);
  ENSURE(s->writing == 0u, STATUS_BAD_STATE);
  ENSURE(validate != NULL, STATUS_BAD_VALUE);
  if (s->active == SLOTS_ACTIVE_FACTORY) {
    /* Undo a rollback to the factory model: the slot holding a model with the newest record. */
    ENSURE(s->state[0] == SLOT_VALID || s->state[1] == SLOT_VALID, STATUS_NO_VALID_SLOT);
    pick = (s->state[1] == SLOT_VALID && (s->state[0] != SLOT_VALID || s->seq[1] > s->seq[0])) ? 1u : 0u;
    rc = reactivate(s, pick, validate, ctx);
  } else {
    unsigned cur = s->active - 1u;
    uint8_t was_trial = s->trial;
    other = 1u - cur;
    scan_slot(s, other);
    if (s->state[other] == SLOT_VALID) {
      rc = reactivate(s, other, validate, ctx);
      if (rc == STATUS_OK && was_trial) s->state[cur] = SLOT_INVALID; /* as after a reset */
    } else if (was_trial) {
      /* Nothing else in the slots: leave the trial for the factory model, as a reset would. The
       * TRIAL record already keeps the slot from ever booting, so nothing is written. */
      s->active = SLOTS_ACTIVE_FACTORY;
      s->trial = 0;
      s->state[cur] = SLOT_INVALID;
      rc = STATUS_OK;
    } else {
      /* Nothing else in the slots (e.g. the first update on a fresh unit): retire the active
       * slot, so the factory model runs. One record write, like every other transition. */
      rc = append_same(s, s->active - 1u, REC_RETIRE);
    }
  }
  if (rc == STATUS_OK && active_slot != NULL) *active_slot = s->active;
  return rc;
}

const uint8_t *slots_active_blob(const model_slots_t *s, size_t *len) {
  const uint8_t *mem;
  if (len != NULL) *len = 0;
  if (!supported(s) || s->active == SLOTS_ACTIVE_FACTORY) return NULL;
  mem = slot_mem(s, s->active - 1u);
  if (mem == NULL) return NULL;
  if (len != NULL) *len = s->len[s->active - 1u];
  return mem + SLOTS_DATA_OFFSET;
}

void slots_report(const model_slots_t *s, uint8_t *active, uint8_t *state_a, uint8_t *state_b) {
  uint8_t st[SLOTS_COUNT];
  st[0] = s->state[0];
  st[1] = s->state[1];
  if (s->active != SLOTS_ACTIVE_FACTORY) st[s->active - 1u] = s->trial ? SLOT_TRIAL : SLOT_ACTIVE;
  if (active != NULL) *active = s->active;
  if (state_a != NULL) *state_a = st[0];
  if (state_b != NULL) *state_b = st[1];
}
