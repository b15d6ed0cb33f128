/* The signed update manifest: MODEL_BEGIN's payload (layout in protocol_defs.h, MODEL_BEGIN_OFF_*).
 *
 * manifest_parse() only checks the frame (length, magic, format) and decodes; manifest_check()
 * decides whether the unit may start the update, in this order, each with its own wire status:
 *   key id not compiled into this firmware          STATUS_UNTRUSTED_KEY
 *   Ed25519 signature over bytes [0, 96) invalid    STATUS_BAD_SIGNATURE
 *   board id differs                                STATUS_WRONG_BOARD
 *   unit id set and not this unit's                 STATUS_WRONG_UNIT
 *   schema hash or engine version differ            STATUS_INCOMPATIBLE
 *   size 0 / larger than a slot                     STATUS_BAD_LENGTH / STATUS_TOO_LARGE
 *   version below the floor, no signed downgrade    STATUS_DOWNGRADE
 * Nothing is read from storage or written; the caller erases only after STATUS_OK.
 */
#ifndef MOTOCOACH_UPDATE_MANIFEST_H
#define MOTOCOACH_UPDATE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "protocol_defs.h"

#if defined(__GNUC__) || defined(__clang__)
#define MANIFEST_MUST_CHECK __attribute__((warn_unused_result))
#else
#define MANIFEST_MUST_CHECK
#endif

#define MANIFEST_SIGNED_LEN MODEL_BEGIN_OFF_SIGNATURE /* bytes covered by the signature */

typedef struct {
    uint8_t flags;
    uint8_t engine_version;
    uint32_t model_size;
    uint32_t model_version;
    uint32_t schema_hash;
    uint32_t key_id;
    char board[PROTO_BOARD_ID_LEN];
    char model_id[PROTO_MODEL_ID_LEN];
    uint8_t sha256[PROTO_SHA256_LEN];
    uint8_t unit_id[PROTO_UNIT_ID_LEN];
    const uint8_t *raw; /* the MODEL_BEGIN payload (signature check); valid during the frame only */
} update_manifest_t;

/* What this unit is: compared against the manifest. */
typedef struct {
    const char *board_id;
    const uint8_t *unit_id;  /* PROTO_UNIT_ID_LEN bytes */
    uint32_t schema_hash;
    uint8_t engine_version;
    uint32_t capacity;       /* max blob bytes per slot */
    uint32_t version_floor;
} update_unit_t;

/* STATUS_OK, STATUS_BAD_LENGTH (len != MODEL_BEGIN_LEN) or STATUS_BAD_VALUE (magic/format). */
MANIFEST_MUST_CHECK int manifest_parse(const uint8_t *payload, size_t len, update_manifest_t *m);

/* STATUS_OK if the unit may start this update; else the first failing check's status (above). */
MANIFEST_MUST_CHECK int manifest_check(const update_manifest_t *m, const update_unit_t *unit);

/* The version floor after this update is confirmed: the manifest's version when it carries a
 * signed downgrade, else the higher of the two. */
uint32_t manifest_next_floor(const update_manifest_t *m, uint32_t floor);

#endif /* MOTOCOACH_UPDATE_MANIFEST_H */
