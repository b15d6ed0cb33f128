/* Slot records: see slot_records.h. */
#include "slot_records.h"

#include <string.h>

typedef char slots_layout_fits[(SLOTS_RECORD_SIZE * SLOTS_MAX_RECORDS <= SLOTS_DATA_OFFSET) ? 1 : -1];
typedef char slots_record_fits[(REC_OFF_CRC + 4u == SLOTS_RECORD_SIZE) ? 1 : -1];

uint32_t rec_get_u32(const uint8_t *p) {
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

int rec_all_erased(const uint8_t *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (p[i] != 0xffu) return 0;
  return 1;
}

static int is_model_kind(uint8_t k) { return k == REC_ACTIVATE || k == REC_RETIRE || k == REC_TRIAL; }

/* Good magic, format, kind and CRC; a model record's length fits the slot, a FLOOR record has none. */
static int record_intact(const model_slots_t *s, const uint8_t *r) {
  uint32_t len = rec_get_u32(r + REC_OFF_LENGTH);
  uint8_t k = r[REC_OFF_KIND];
  if (rec_get_u32(r + REC_OFF_MAGIC) != SLOTS_RECORD_MAGIC || r[REC_OFF_FORMAT] != REC_FORMAT) return 0;
  if (rec_get_u32(r + REC_OFF_CRC) != crc32(r, REC_OFF_CRC)) return 0;
  if (k == REC_FLOOR) return len == 0u;
  return is_model_kind(k) && len > 0u && len <= s->capacity;
}

uint8_t rec_newest_model(model_slots_t *s, unsigned slot) {
  const uint8_t *mem = s->hal->slot_map((uint8_t)slot);
  uint8_t best = NO_RECORD;
  uint32_t best_seq = 0, i;
  s->next_record[slot] = 0;
  s->top_seq[slot] = 0;
  s->slot_floor[slot] = 0;
  if (mem == NULL) return NO_RECORD;
  for (i = 0; i < SLOTS_MAX_RECORDS; i++) {
    const uint8_t *r = mem + i * SLOTS_RECORD_SIZE;
    uint32_t seq;
    if (rec_all_erased(r, SLOTS_RECORD_SIZE)) continue;
    s->next_record[slot] = (uint8_t)(i + 1u); /* append after the last used position, torn or not */
    if (!record_intact(s, r)) continue;
    seq = rec_get_u32(r + REC_OFF_SEQ);
    if (seq > s->max_seq) s->max_seq = seq;
    if (seq > s->top_seq[slot]) {
      s->top_seq[slot] = seq;
      s->slot_floor[slot] = rec_get_u32(r + REC_OFF_FLOOR);
    }
    if (is_model_kind(r[REC_OFF_KIND]) && (best == NO_RECORD || seq > best_seq)) {
      best = (uint8_t)i;
      best_seq = seq;
    }
  }
  return best;
}

int rec_append(model_slots_t *s, unsigned slot, const slot_record_t *r) {
  uint8_t rec[SLOTS_RECORD_SIZE];
  uint32_t off, seq = s->max_seq + 1u;
  const uint8_t *back;
  if (s->next_record[slot] >= SLOTS_MAX_RECORDS) return STATUS_STORAGE_ERROR;
  memset(rec, 0, sizeof rec);
  put_u32(rec + REC_OFF_MAGIC, SLOTS_RECORD_MAGIC);
  put_u32(rec + REC_OFF_SEQ, seq);
  put_u32(rec + REC_OFF_LENGTH, r->len);
  rec[REC_OFF_KIND] = r->kind;
  rec[REC_OFF_FORMAT] = REC_FORMAT;
  if (r->sha256 != NULL) memcpy(rec + REC_OFF_SHA256, r->sha256, PROTO_SHA256_LEN);
  if (r->model_id != NULL) memcpy(rec + REC_OFF_MODEL_ID, r->model_id, PROTO_MODEL_ID_LEN);
  put_u32(rec + REC_OFF_VERSION, r->version);
  put_u32(rec + REC_OFF_FLOOR, s->floor);
  put_u32(rec + REC_OFF_CRC, crc32(rec, REC_OFF_CRC));
  off = (uint32_t)s->next_record[slot] * SLOTS_RECORD_SIZE;
  s->next_record[slot]++; /* the position is used even if the write fails half way */
  if (s->hal->slot_write((uint8_t)slot, off, rec, sizeof rec) != 0) return STATUS_STORAGE_ERROR;
  back = s->hal->slot_map((uint8_t)slot);
  if (back == NULL || memcmp(back + off, rec, sizeof rec) != 0) return STATUS_STORAGE_ERROR;
  s->max_seq = seq;
  s->top_seq[slot] = seq;
  s->slot_floor[slot] = s->floor;
  return STATUS_OK;
}
