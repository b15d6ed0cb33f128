/* Model updates on the unit (internal to the core): the signed manifest is checked before any
 * erase, the blob's sha256 at commit, and a new model runs on trial until it is confirmed (by
 * PROTO_TRIAL_FRAMES good TELEMETRY frames or MODEL_CONFIRM). See update_manifest.h and
 * model_slots.h.
 */
#ifndef MOTOCOACH_CORE_UPDATE_H
#define MOTOCOACH_CORE_UPDATE_H

#include "coach_core.h"

/* MODEL_BEGIN / CHUNK / COMMIT / ABORT / ROLLBACK / CONFIRM: always answers with one ACK. */
void core_update_handle(coach_core_t *c, const proto_frame_t *f);

/* After each TELEMETRY frame: ok = it was handled without a fault. Confirms a model on trial
 * after PROTO_TRIAL_FRAMES such frames in a row. */
void core_update_telemetry_done(coach_core_t *c, int ok);

/* Shared with coach_core.c. */
void core_send_ack(coach_core_t *c, const proto_frame_t *f, uint8_t status, uint32_t value);
void core_activate_model(coach_core_t *c);
int core_validate_blob(const uint8_t *blob, size_t len, void *ctx);

#endif /* MOTOCOACH_CORE_UPDATE_H */
