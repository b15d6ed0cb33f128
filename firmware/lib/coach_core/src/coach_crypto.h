/* Signature verification for signed updates: a thin seam over libsodium's Ed25519.
 *
 * The same library on every target: Debian's libsodium-dev (SIL), the few libsodium source files
 * that verification needs, fetched pinned by `make setup` (QEMU rv32), and the espressif/libsodium
 * managed component (ESP32). No cryptography is implemented here.
 */
#ifndef MOTOCOACH_COACH_CRYPTO_H
#define MOTOCOACH_COACH_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define COACH_ED25519_PUBLIC_LEN 32u
#define COACH_ED25519_SIGNATURE_LEN 64u

/* 1 when `sig` is a valid Ed25519 signature of msg[0..len) by public key `pk`, else 0
 * (including a malformed key or signature). */
int coach_ed25519_valid(const uint8_t sig[64], const uint8_t *msg, size_t len, const uint8_t pk[32]);

#endif /* MOTOCOACH_COACH_CRYPTO_H */
