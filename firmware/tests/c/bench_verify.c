/* Cost of one signed-manifest check (Ed25519 verify of 96 bytes through libsodium, the part of
 * MODEL_BEGIN that dominates), on the golden manifest.
 *   host (SIL build flags): prints "verify_ms <mean of N runs>"
 *   rv32 under QEMU -icount shift=0: prints "verify_instructions <count>" from minstret, which
 *   QEMU counts exactly with -icount. Exit status 0 only if the signature verified every time. */
#if !defined(__riscv)
#define _POSIX_C_SOURCE 199309L
#include <time.h>
#endif
#include <stdio.h>

#include "coach_crypto.h"
#include "golden_manifest.h"
#include "trusted_key.h"
#include "update_manifest.h"

#if defined(__riscv)
static unsigned long long instret(void) {
    unsigned long lo, hi, hi2;
    do {
        __asm__ volatile("csrr %0, minstreth" : "=r"(hi));
        __asm__ volatile("csrr %0, minstret" : "=r"(lo));
        __asm__ volatile("csrr %0, minstreth" : "=r"(hi2));
    } while (hi != hi2);
    return ((unsigned long long)hi << 32) | lo;
}
#else
static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
#endif

static int verify_once(void) {
    return coach_ed25519_valid(golden_manifest + MODEL_BEGIN_OFF_SIGNATURE, golden_manifest, MANIFEST_SIGNED_LEN,
                               COACH_TRUSTED_KEY /* the development key signed it */);
}

int main(void) {
    int ok = 1;
#if defined(__riscv)
    unsigned long long t0 = instret();
    ok &= verify_once();
    unsigned long long t1 = instret();
    printf("verify_instructions %llu\n", t1 - t0);
#else
    enum { N = 200 };
    ok &= verify_once(); /* warm the caches */
    double t0 = now_ms();
    for (int i = 0; i < N; i++) ok &= verify_once();
    printf("verify_ms %.6f\n", (now_ms() - t0) / N);
#endif
    return ok ? 0 : 1;
}
