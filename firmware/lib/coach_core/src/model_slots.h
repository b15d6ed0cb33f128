/* Two model slots (A, B) for power-cut-safe model-only updates.
 *
 * Layout of each slot (slot_size bytes, from the HAL):
 *   [0, SLOTS_DATA_OFFSET)        header area: up to SLOTS_MAX_RECORDS slot records, appended
 *   [SLOTS_DATA_OFFSET, size)     model blob bytes
 *
 * A slot record (magic, sequence, length, sha256, model_id, kind, CRC-32 of the record) is
 * written LAST, only after the blob's sha256 has been re-read from storage and verified and the
 * validate callback (load + self-test) has passed. Boot picks the slot whose newest record is an
 * ACTIVATE record with a good CRC, a matching blob sha256 and the highest sequence; anything
 * else (torn record, torn blob, no record, a RETIRE record) is never booted, and with no such
 * slot the factory model runs. Updates always go into the slot that is not active, so the
 * running model is never touched. Records are append-only (NOR flash never needs a partial
 * erase), and every transition is ONE record append with its own CRC:
 *
 *   commit                        ACTIVATE record on the updated slot
 *   rollback, other slot valid    ACTIVATE record on the other slot (same blob, higher sequence)
 *   rollback, no other model      RETIRE record on the active slot: the factory model runs; the
 *                                 blob stays (reported SLOT_VALID) but is never booted
 *   rollback from factory model   ACTIVATE record on the slot with the newest record (undoes
 *                                 the rollback that retired it)
 *
 * A torn append fails its CRC and is ignored, so a power cut leaves the model before the
 * transition; a complete one gives the model after it.
 *
 * Signed updates add two things (record layout in slot_records.h):
 *   trial boot     commit appends a TRIAL record: the model runs, but a reset before
 *                  slots_confirm() (an ACTIVATE record) never boots it again (the slot reads
 *                  SLOT_INVALID), so the unit returns to the model it ran before;
 *   version floor  every record carries the floor in force when it was written, and the floor is
 *                  the one in the newest intact record; an update whose erase would leave the
 *                  newest remaining record with another floor first appends a FLOOR record to the
 *                  other slot, so the floor survives every erase and every power cut, and a
 *                  signed downgrade can lower it (its ACTIVATE record is then the newest).
 *
 * Every fallible function returns a protocol STATUS_* code (STATUS_OK == 0).
 */
#ifndef MOTOCOACH_MODEL_SLOTS_H
#define MOTOCOACH_MODEL_SLOTS_H

#include <stddef.h>
#include <stdint.h>

#include "hal.h"
#include "protocol_defs.h"

#if defined(__GNUC__) || defined(__clang__)
#define SLOTS_MUST_CHECK __attribute__((warn_unused_result))
#else
#define SLOTS_MUST_CHECK
#endif

#define SLOTS_COUNT 2
#define SLOTS_RECORD_SIZE 80u
#define SLOTS_MAX_RECORDS 24u   /* rollbacks between two updates of the same slot */
#define SLOTS_DATA_OFFSET 2048u /* >= SLOTS_RECORD_SIZE * SLOTS_MAX_RECORDS */
#define SLOTS_RECORD_MAGIC 0x31534d43u /* "CMS1" little-endian */

/* Values of model_slots_t.active and of the active_slot outputs (as in IDENTITY). */
#define SLOTS_ACTIVE_FACTORY 0u
#define SLOTS_ACTIVE_A 1u
#define SLOTS_ACTIVE_B 2u

/* All runtime state; fixed size, no allocation. Treat the fields as private. */
typedef struct {
  const coach_hal_t *hal;
  uint32_t capacity;                     /* max blob bytes per slot; 0 = slots unsupported */
  uint32_t floor;                        /* version floor: that of the newest intact record */
  uint32_t top_seq[SLOTS_COUNT];         /* sequence of each slot's newest intact record, any kind */
  uint32_t slot_floor[SLOTS_COUNT];      /* floor carried by that record (0: no record) */
  uint32_t version[SLOTS_COUNT];         /* model version of each slot's newest model record */
  uint8_t trial;                         /* 1: the active slot runs on trial (not confirmed) */
  uint32_t trial_floor;                  /* the floor that confirming the trial model sets */
  uint32_t seq[SLOTS_COUNT];             /* sequence of each slot's newest valid record, 0 none */
  uint32_t max_seq;                      /* highest sequence in any intact record (valid or not) */
  uint32_t len[SLOTS_COUNT];             /* blob length of each valid slot */
  uint8_t next_record[SLOTS_COUNT];      /* index of the first free (erased) record position */
  uint8_t state[SLOTS_COUNT];            /* SLOT_EMPTY / SLOT_VALID / SLOT_INVALID / SLOT_WRITING */
  uint8_t retired[SLOTS_COUNT];          /* 1: newest record is RETIRE (valid, never booted) */
  uint8_t active;                        /* SLOTS_ACTIVE_* */
  uint8_t writing;                       /* 0 none, else SLOTS_ACTIVE_A/B being written */
  uint32_t total;                        /* update in progress: declared size */
  uint32_t received;                     /* update in progress: bytes stored so far */
  uint8_t sha256[PROTO_SHA256_LEN];      /* update in progress: expected blob sha256 */
  char model_id[PROTO_MODEL_ID_LEN];     /* update in progress: model id (NUL padded) */
  uint32_t new_version;                  /* update in progress: signed model version */
  uint32_t new_floor;                    /* update in progress: floor once confirmed */
} model_slots_t;

/* Load + self-test a candidate blob. Return 0 if it may become active; any other value refuses it
 * (STATUS_INCOMPATIBLE is passed through; every other nonzero value becomes
 * STATUS_SELFTEST_FAILED). The blob pointer is the slot's storage and outlives the call. */
typedef int (*slot_validate_fn)(const uint8_t *blob, size_t len, void *ctx);

/* Boot scan: pick the newest VALID slot, else the factory model. Never writes.
 * Returns STATUS_OK, or STATUS_STORAGE_ERROR if the HAL has no slot support (then every other
 * call refuses with STATUS_STORAGE_ERROR and the factory model stays active). */
SLOTS_MUST_CHECK int slots_init(model_slots_t *s, const coach_hal_t *hal);

/* Start an update of the inactive slot (with the factory model running: a retired slot first,
 * else A): checks the size, keeps the version floor (a FLOOR record on the other slot when the
 * target slot alone holds it), then erases the slot. The caller has already checked the signed
 * manifest (update_manifest.h): version and new_floor come from it.
 * STATUS_TOO_LARGE if total > capacity, STATUS_BAD_LENGTH if total == 0. Any update already in
 * progress is dropped. */
SLOTS_MUST_CHECK int slots_begin(model_slots_t *s, uint32_t total, const uint8_t sha256[32],
                                 const char model_id[16], uint32_t version, uint32_t new_floor);

/* Store len bytes at offset. offset must equal the bytes received so far (else
 * STATUS_BAD_OFFSET: out of order or duplicated); offset + len must not exceed the declared total
 * (else STATUS_BAD_LENGTH). *received (may be NULL) gets the byte count stored so far. */
SLOTS_MUST_CHECK int slots_chunk(model_slots_t *s, uint32_t offset, const uint8_t *data, size_t len,
                                 uint32_t *received);

/* Finish the update: all bytes received (else STATUS_BAD_LENGTH), sha256 re-read from storage
 * equals MODEL_BEGIN's (else STATUS_HASH_MISMATCH), validate passes; only then a TRIAL record is
 * written and the slot becomes active on trial. On any refusal the previously active model stays. */
SLOTS_MUST_CHECK int slots_commit(model_slots_t *s, slot_validate_fn validate, void *ctx,
                                  uint8_t *active_slot);

/* Confirm the model on trial: append its ACTIVATE record (with the new floor). STATUS_BAD_STATE
 * when no model is on trial. */
SLOTS_MUST_CHECK int slots_confirm(model_slots_t *s);

/* 1 while the active model is on trial. */
uint8_t slots_on_trial(const model_slots_t *s);

/* The version floor, and the signed version of the active slot's model (0: factory). */
uint32_t slots_floor(const model_slots_t *s);
uint32_t slots_active_version(const model_slots_t *s);

/* Drop an update in progress (the inactive slot is left without a record). */
SLOTS_MUST_CHECK int slots_abort(model_slots_t *s);

/* Go back to the previous model (see the table above): the other slot if it holds a valid model
 * (which must pass validate, else STATUS_SELFTEST_FAILED / STATUS_INCOMPATIBLE and nothing
 * changes); else the factory model, retiring the active slot (a model on trial needs no record:
 * its TRIAL record already keeps it from booting, and it is never re-activated); from the factory model, the
 * retired slot again. STATUS_NO_VALID_SLOT when the factory model runs and no slot holds a
 * model, STATUS_BAD_STATE during an update, STATUS_STORAGE_ERROR if the record area is full.
 * *active_slot gets the new SLOTS_ACTIVE_* (SLOTS_ACTIVE_FACTORY after a retire). */
SLOTS_MUST_CHECK int slots_rollback(model_slots_t *s, slot_validate_fn validate, void *ctx,
                                    uint8_t *active_slot);

/* Blob of the active slot, or NULL (and *len = 0) when the factory model is active. */
const uint8_t *slots_active_blob(const model_slots_t *s, size_t *len);

/* For IDENTITY: active slot (SLOTS_ACTIVE_*) and each slot's SLOT_* state (ACTIVE for the active
 * one, TRIAL while it is on trial). */
void slots_report(const model_slots_t *s, uint8_t *active, uint8_t *state_a, uint8_t *state_b);

#endif /* MOTOCOACH_MODEL_SLOTS_H */
