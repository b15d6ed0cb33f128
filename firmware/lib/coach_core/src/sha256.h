/* SHA-256 (FIPS 180-4), small and portable: used to verify model blobs before they are booted. */
#ifndef MOTOCOACH_SHA256_H
#define MOTOCOACH_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define COACH_SHA256_LEN 32u

typedef struct {
  uint32_t h[8];
  uint64_t total_len;  /* bytes hashed so far */
  uint8_t block[64];
  uint32_t block_len;  /* bytes waiting in block */
} coach_sha256_t;

/* These cannot fail, so they return nothing. */
void coach_sha256_init(coach_sha256_t *c);
void coach_sha256_update(coach_sha256_t *c, const uint8_t *data, size_t len);
void coach_sha256_final(coach_sha256_t *c, uint8_t out[COACH_SHA256_LEN]);
/* One call: out = sha256(data[0..len)). */
void coach_sha256(const uint8_t *data, size_t len, uint8_t out[COACH_SHA256_LEN]);

#endif /* MOTOCOACH_SHA256_H */
