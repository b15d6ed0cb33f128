/* Small shared helpers for the portable core: status discipline and little-endian access. */
#ifndef MOTOCOACH_CORE_UTIL_H
#define MOTOCOACH_CORE_UTIL_H

#include <stdint.h>
#include <string.h>

/* Every fallible core function returns a status the caller must look at. */
#if defined(__GNUC__) || defined(__clang__)
#define CORE_MUST_CHECK __attribute__((warn_unused_result))
#else
#define CORE_MUST_CHECK
#endif

/* Propagate a non-zero status to the caller (one macro for the whole core). */
#ifndef RETURN_IF_ERROR
#define RETURN_IF_ERROR(expr)                                                                        \
    do {                                                                                             \
        int rie_status_ = (int)(expr);                                                               \
        if (rie_status_ != 0) return rie_status_;                                                    \
    } while (0)
#endif

/* Return `status` when `cond` is false. */
#define ENSURE(cond, status)                                                                         \
    do {                                                                                             \
        if (!(cond)) return (status);                                                                \
    } while (0)

/* A HAL entry that is NULL is "unsupported": callers get this distinct value (-ENOSYS style). */
#define CORE_ERR_UNSUPPORTED (-38)

static inline uint16_t core_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t core_get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline float core_get_f32(const uint8_t *p) {
    uint32_t u = core_get_u32(p);
    float f;
    memcpy(&f, &u, sizeof f); /* IEEE-754 binary32 on every supported target */
    return f;
}
static inline void core_put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void core_put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

#endif /* MOTOCOACH_CORE_UTIL_H */
