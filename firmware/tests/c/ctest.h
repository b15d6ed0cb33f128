/* Minimal unit-test harness that runs the same on the host and on rv32 under QEMU semihosting. */
#ifndef CTEST_H
#define CTEST_H

#include <stdio.h>

extern int ctest_failures;
extern int ctest_checks;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        ctest_checks++;                                                                  \
        if (!(cond)) {                                                                   \
            ctest_failures++;                                                            \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                      \
        }                                                                                \
    } while (0)

#define CHECK_EQ(a, b)                                                                   \
    do {                                                                                 \
        long long ca_ = (long long)(a), cb_ = (long long)(b);                            \
        ctest_checks++;                                                                  \
        if (ca_ != cb_) {                                                                \
            ctest_failures++;                                                            \
            printf("FAIL %s:%d: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, #a, #b, ca_, cb_); \
        }                                                                                \
    } while (0)

typedef void (*ctest_fn)(void);
typedef struct {
    const char *name;
    ctest_fn fn;
} ctest_case_t;

#endif
