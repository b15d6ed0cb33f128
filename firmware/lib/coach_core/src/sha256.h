/* SHA-256 for model blobs (boot check, commit check against the signed manifest): libsodium's
 * crypto_hash_sha256, the same library that verifies the signatures (coach_crypto.c). */
#ifndef MOTOCOACH_SHA256_H
#define MOTOCOACH_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "sodium/crypto_hash_sha256.h"

#define COACH_SHA256_LEN 32u

typedef crypto_hash_sha256_state coach_sha256_t;

/* These cannot fail, so they return nothing. */
void coach_sha256_init(coach_sha256_t *c);
void coach_sha256_update(coach_sha256_t *c, const uint8_t *data, size_t len);
void coach_sha256_final(coach_sha256_t *c, uint8_t out[COACH_SHA256_LEN]);
/* One call: out = sha256(data[0..len)). */
void coach_sha256(const uint8_t *data, size_t len, uint8_t out[COACH_SHA256_LEN]);

#endif /* MOTOCOACH_SHA256_H */
