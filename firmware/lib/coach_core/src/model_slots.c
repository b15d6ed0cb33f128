/* Model slots: see model_slots.h for the layout and the power-cut argument. */
#include "model_slots.h"

#include <string.h>

#include "sha256.h"

/* Record layout (little-endian), SLOTS_RECORD_SIZE bytes. */
#define REC_OFF_MAGIC 0u
#define REC_OFF_SEQ 4u
#define REC_OFF_LENGTH 8u
#define REC_OFF_STATE 12u
#define REC_OFF_FORMAT 13u
#define REC_OFF_SHA256 16u
#define REC_OFF_MODEL_ID 48u
#define REC_OFF_CRC 76u
#define REC_FORMAT 1u
#define NO_RECORD 0xffu
/* Record kinds (the state byte). ACTIVATE keeps SLOT_VALID's value so slot files written before
 * RETIRE existed still boot. */
#define REC_ACTIVATE SLOT_VALID
#define REC_RETIRE 0x52u /* 'R': the slot was rolled back from; its blob stays but is not booted */

#define RETURN_IF_ERROR(expr)      \
  do {                             \
    int rc_ = (expr);              \
    if (rc_ != STATUS_OK) return rc_; \
  } while (0)
#define ENSURE(cond, status)       \
  do {                             \
    if (!(cond)) return (status);  \
  } while (0)

typedef char slots_layout_fits[(SLOTS_RECORD_SIZE * SLOTS_MAX_RECORDS <= SLOTS_DATA_OFFSET) ? 1 : -1];

static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

/* CRC-32 (IEEE 802.3, reflected); bitwise because it only covers 76-byte records. */
static uint32_t crc32(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffffu;
  size_t i;
  unsigned b;
  for (i = 0; i < n; i++) {
    c ^= p[i];
    for (b = 0; b < 8; b++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return ~c;
}

static int all_erased(const uint8_t *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (p[i] != 0xffu) return 0;
  return 1;
}

static const uint8_t *slot_mem(const model_slots_t *s, unsigned slot) {
  return s->hal->slot_map((uint8_t)slot);
}

/* An intact record: good magic, format, kind and CRC, and a length that fits the slot. */
static int record_intact(const model_slots_t *s, const uint8_t *r) {
  return get_u32(r + REC_OFF_MAGIC) == SLOTS_RECORD_MAGIC && r[REC_OFF_FORMAT] == REC_FORMAT &&
         (r[REC_OFF_STATE] == REC_ACTIVATE || r[REC_OFF_STATE] == REC_RETIRE) &&
         get_u32(r + REC_OFF_CRC) == crc32(r, REC_OFF_CRC) &&
         get_u32(r + REC_OFF_LENGTH) > 0u && get_u32(r + REC_OFF_LENGTH) <= s->capacity;
}

static int blob_matches(const uint8_t *mem, uint32_t len, const uint8_t *sha) {
  uint8_t got[COACH_SHA256_LEN];
  coach_sha256(mem + SLOTS_DATA_OFFSET, len, got);
  return memcmp(got, sha, COACH_SHA256_LEN) == 0;
}

/* Index of the slot's newest intact record, or NO_RECORD. Also updates next_record and max_seq. */
static uint8_t newest_record(model_slots_t *s, unsigned slot) {
  const uint8_t *mem = slot_mem(s, slot);
  uint8_t best = NO_RECORD;
  uint32_t best_seq = 0, i;
  s->next_record[slot] = 0;
  for (i = 0; i < SLOTS_MAX_RECORDS; i++) {
    const uint8_t *r = mem + i * SLOTS_RECORD_SIZE;
    if (all_erased(r, SLOTS_RECORD_SIZE)) continue;
    s->next_record[slot] = (uint8_t)(i + 1u); /* append after the last used position, torn or not */
    if (!record_intact(s, r)) continue;
    if (get_u32(r + REC_OFF_SEQ) > s->max_seq) s->max_seq = get_u32(r + REC_OFF_SEQ);
    if (best == NO_RECORD || get_u32(r + REC_OFF_SEQ) > best_seq) {
      best = (uint8_t)i;
      best_seq = get_u32(r + REC_OFF_SEQ);
    }
  }
  return best;
}

static void scan_slot(model_slots_t *s, unsigned slot) {
  const uint8_t *mem = slot_mem(s, slot);
  uint8_t idx;
  s->seq[slot] = 0;
  s->len[slot] = 0;
  s->retired[slot] = 0;
  if (mem == NULL) {
    s->state[slot] = SLOT_INVALID;
    return;
  }
  idx = newest_record(s, slot);
  if (idx == NO_RECORD) {
    s->state[slot] = all_erased(mem, (size_t)s->capacity + SLOTS_DATA_OFFSET) ? SLOT_EMPTY : SLOT_INVALID;
    return;
  }
  {
    const uint8_t *r = mem + (uint32_t)idx * SLOTS_RECORD_SIZE;
    uint32_t len = get_u32(r + REC_OFF_LENGTH);
    if (!blob_matches(mem, len, r + REC_OFF_SHA256)) {
      s->state[slot] = SLOT_INVALID; /* torn or corrupted blob: never booted */
      return;
    }
    s->state[slot] = SLOT_VALID;
    s->seq[slot] = get_u32(r + REC_OFF_SEQ);
    s->len[slot] = len;
    s->retired[slot] = (uint8_t)(r[REC_OFF_STATE] == REC_RETIRE);
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
  pick_active(s);
  return STATUS_OK;
}

static int map_validate(int rc) {
  if (rc == 0) return STATUS_OK;
  return rc == STATUS_INCOMPATIBLE ? STATUS_INCOMPATIBLE : STATUS_SELFTEST_FAILED;
}

/* Append a record of `kind` for `slot` and read it back. Only if that succeeds does the slot
 * become active (REC_ACTIVATE) or the factory model take over (REC_RETIRE). */
static int write_record(model_slots_t *s, unsigned slot, uint8_t kind, uint32_t len, const uint8_t *sha,
                        const char *model_id) {
  uint8_t rec[SLOTS_RECORD_SIZE];
  uint32_t off, seq = s->max_seq + 1u;
  const uint8_t *back;
  ENSURE(s->next_record[slot] < SLOTS_MAX_RECORDS, STATUS_STORAGE_ERROR);
  memset(rec, 0, sizeof rec);
  put_u32(rec + REC_OFF_MAGIC, SLOTS_RECORD_MAGIC);
  put_u32(rec + REC_OFF_SEQ, seq);
  put_u32(rec + REC_OFF_LENGTH, len);
  rec[REC_OFF_STATE] = kind;
  rec[REC_OFF_FORMAT] = REC_FORMAT;
  memcpy(rec + REC_OFF_SHA256, sha, COACH_SHA256_LEN);
  memcpy(rec + REC_OFF_MODEL_ID, model_id, PROTO_MODEL_ID_LEN);
  put_u32(rec + REC_OFF_CRC, crc32(rec, REC_OFF_CRC));
  off = (uint32_t)s->next_record[slot] * SLOTS_RECORD_SIZE;
  s->next_record[slot]++; /* the position is used even if the write fails half way */
  ENSURE(s->hal->slot_write((uint8_t)slot, off, rec, sizeof rec) == 0, STATUS_STORAGE_ERROR);
  back = slot_mem(s, slot);
  ENSURE(back != NULL && memcmp(back + off, rec, sizeof rec) == 0, STATUS_STORAGE_ERROR);
  s->max_seq = seq;
  s->seq[slot] = seq;
  s->len[slot] = len;
  s->state[slot] = SLOT_VALID;
  s->retired[slot] = (uint8_t)(kind == REC_RETIRE);
  s->active = kind == REC_RETIRE ? SLOTS_ACTIVE_FACTORY : (uint8_t)(slot + 1u);
  return STATUS_OK;
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

int slots_begin(model_slots_t *s, uint32_t total, const uint8_t sha256[32], const char model_id[16]) {
  unsigned t;
  ENSURE(supported(s), STATUS_STORAGE_ERROR);
  ENSURE(sha256 != NULL && model_id != NULL, STATUS_BAD_VALUE);
  ENSURE(total > 0u, STATUS_BAD_LENGTH);
  ENSURE(total <= s->capacity, STATUS_TOO_LARGE);
  end_update(s, SLOT_INVALID);
  t = update_target(s);
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
  if (rc == STATUS_OK) rc = write_record(s, t, REC_ACTIVATE, s->total, s->sha256, s->model_id);
  if (rc != STATUS_OK) {
    end_update(s, SLOT_INVALID);
    return rc;
  }
  s->writing = 0;
  s->total = 0;
  s->received = 0;
  if (active_slot != NULL) *active_slot = s->active;
  return STATUS_OK;
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
  idx = newest_record(s, slot);
  ENSURE(idx != NO_RECORD, STATUS_NO_VALID_SLOT);
  r = mem + (uint32_t)idx * SLOTS_RECORD_SIZE;
  rc = write_record(s, slot, kind, s->len[slot], r + REC_OFF_SHA256, (const char *)(r + REC_OFF_MODEL_ID));
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
    other = s->active == SLOTS_ACTIVE_A ? 1u : 0u;
    scan_slot(s, other);
    if (s->state[other] == SLOT_VALID) {
      rc = reactivate(s, other, validate, ctx);
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
  if (s->active != SLOTS_ACTIVE_FACTORY) st[s->active - 1u] = SLOT_ACTIVE;
  if (active != NULL) *active = s->active;
  if (state_a != NULL) *state_a = st[0];
  if (state_b != NULL) *state_b = st[1];
}
