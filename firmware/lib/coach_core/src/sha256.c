/* See sha256.h: thin wrappers over libsodium, so the core keeps one small hashing API. */
#include "sha256.h"

typedef char coach_sha256_len_ok[(crypto_hash_sha256_BYTES == COACH_SHA256_LEN) ? 1 : -1];

void coach_sha256_init(coach_sha256_t *c) { (void)crypto_hash_sha256_init(c); }

void coach_sha256_update(coach_sha256_t *c, const uint8_t *data, size_t len) {
  if (len > 0u) (void)crypto_hash_sha256_update(c, data, (unsigned long long)len);
}

void coach_sha256_final(coach_sha256_t *c, uint8_t out[COACH_SHA256_LEN]) {
  (void)crypto_hash_sha256_final(c, out);
}

void coach_sha256(const uint8_t *data, size_t len, uint8_t out[COACH_SHA256_LEN]) {
  (void)crypto_hash_sha256(out, data, (unsigned long long)len);
}
