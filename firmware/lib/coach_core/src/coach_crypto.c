/* See coach_crypto.h. */
#include "coach_crypto.h"

#include "sodium/crypto_sign_ed25519.h"

typedef char coach_sig_len_ok[(crypto_sign_ed25519_BYTES == COACH_ED25519_SIGNATURE_LEN) ? 1 : -1];
typedef char coach_pk_len_ok[(crypto_sign_ed25519_PUBLICKEYBYTES == COACH_ED25519_PUBLIC_LEN) ? 1 : -1];

int coach_ed25519_valid(const uint8_t sig[64], const uint8_t *msg, size_t len, const uint8_t pk[32]) {
    if (sig == NULL || pk == NULL || (msg == NULL && len > 0u)) return 0;
    return crypto_sign_ed25519_verify_detached(sig, msg, (unsigned long long)len, pk) == 0;
}
