/* Slot records: the append-only, CRC-protected log at the start of each model slot.
 * Internal to model_slots.c (kept apart so that each file stays small).
 *
 * Record layout (little-endian), SLOTS_RECORD_SIZE (80) bytes:
 *   0 magic  4 sequence  8 blob length  12 kind  13 format  16 blob sha256  48 model id
 *   64 model version  68 version floor  72 reserved (0)  76 CRC-32 of bytes 0..75
 * Kinds: ACTIVATE (a confirmed model), TRIAL (a committed model not yet confirmed: never booted
 * after a reset), RETIRE (rolled back from: never booted), FLOOR (no model: carries the version
 * floor across the erase of the other slot). Every record carries the floor in force when it was
 * written; the unit's floor is the one in the newest intact record (highest sequence) of either slot.
 */
#ifndef MOTOCOACH_SLOT_RECORDS_H
#define MOTOCOACH_SLOT_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "model_slots.h"

#define REC_OFF_MAGIC 0u
#define REC_OFF_SEQ 4u
#define REC_OFF_LENGTH 8u
#define REC_OFF_KIND 12u
#define REC_OFF_FORMAT 13u
#define REC_OFF_SHA256 16u
#define REC_OFF_MODEL_ID 48u
#define REC_OFF_VERSION 64u
#define REC_OFF_FLOOR 68u
#define REC_OFF_CRC 76u
#define REC_FORMAT 2u /* format 1 records (unsigned updates, before the floor) are never booted */
#define NO_RECORD 0xffu

#define REC_ACTIVATE SLOT_VALID
#define REC_RETIRE 0x52u /* 'R' */
#define REC_TRIAL 0x54u  /* 'T' */
#define REC_FLOOR 0x46u  /* 'F' */

/* The fields of one record to append. */
typedef struct {
  uint8_t kind;
  uint32_t len;
  const uint8_t *sha256;
  const char *model_id;
  uint32_t version;
} slot_record_t;

uint32_t rec_get_u32(const uint8_t *p);
int rec_all_erased(const uint8_t *p, size_t n);

/* Scan a slot's records: index of the newest intact MODEL record (ACTIVATE, TRIAL, RETIRE) or
 * NO_RECORD. Updates s->next_record[slot], s->max_seq, s->top_seq[slot] and s->slot_floor[slot]. */
uint8_t rec_newest_model(model_slots_t *s, unsigned slot);

/* Append one record (sequence max_seq + 1, floor s->floor) and read it back.
 * STATUS_OK or STATUS_STORAGE_ERROR (record area full, write failed, read-back differs). */
SLOTS_MUST_CHECK int rec_append(model_slots_t *s, unsigned slot, const slot_record_t *r);

#endif /* MOTOCOACH_SLOT_RECORDS_H */
