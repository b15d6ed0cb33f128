/* SSE2 dot products for the engine's four-row weight blocks, on x86-64 hosts only (the SIL
 * firmware and the host library). The MCU builds never include this file: they run the
 * scalar loops in coach_engine.c. Define COACH_ENGINE_NO_SIMD to get those on x86-64 too.
 *
 * Exactness: weights and inputs are int8, so each int16 product is exact and _mm_madd_epi16
 * adds two of them into int32 exactly. The sums are the scalar loop's sums in another order;
 * the blob loader bounds |bias| + n_in * 2^14, so no order can overflow int32. */
#ifndef COACH_ENGINE_SSE2_H
#define COACH_ENGINE_SSE2_H

#include <emmintrin.h>
#include <stdint.h>

/* One 16-byte column quad of a four-row block (columns c..c+3, rows r0..r3, column by column)
   times the input pairs (x_c, x_c+1) and (x_c+2, x_c+3): four int32 partial sums, r0..r3. */
static inline __m128i coach_sse2_quad(__m128i w, __m128i x01, __m128i x23) {
  __m128i lo = _mm_srai_epi16(_mm_unpacklo_epi8(w, w), 8); /* c0 r0..r3, c1 r0..r3 (int16) */
  __m128i hi = _mm_srai_epi16(_mm_unpackhi_epi8(w, w), 8); /* c2 r0..r3, c3 r0..r3 */
  lo = _mm_unpacklo_epi16(lo, _mm_unpackhi_epi64(lo, lo)); /* c0r0 c1r0 c0r1 c1r1 ... */
  hi = _mm_unpacklo_epi16(hi, _mm_unpackhi_epi64(hi, hi));
  return _mm_add_epi32(_mm_madd_epi16(lo, x01), _mm_madd_epi16(hi, x23));
}

/* Input pairs for coach_sse2_quad: pairs[p] holds (x[2p], x[2p+1]) four times, int16. */
static inline void coach_sse2_pairs(const int8_t *x, int n_pairs, __m128i *pairs) {
  for (int p = 0; p < n_pairs; ++p) {
    const uint32_t lo = (uint16_t)(int16_t)x[2 * p], hi = (uint16_t)(int16_t)x[2 * p + 1];
    pairs[p] = _mm_set1_epi32((int32_t)(lo | (hi << 16)));
  }
}

/* Sums over `quads` column quads of two four-row blocks w and v (v may equal w): s[0..3] for
   w's rows, s[4..7] for v's. */
static inline void coach_sse2_two_blocks(const int8_t *w, const int8_t *v, const __m128i *pairs, int quads,
                                         int32_t s[8]) {
  __m128i sw = _mm_setzero_si128(), sv = _mm_setzero_si128();
  for (int q = 0; q < quads; ++q) {
    const __m128i x01 = pairs[2 * q], x23 = pairs[2 * q + 1];
    sw = _mm_add_epi32(sw, coach_sse2_quad(_mm_loadu_si128((const __m128i *)(const void *)(w + 16 * q)), x01, x23));
    sv = _mm_add_epi32(sv, coach_sse2_quad(_mm_loadu_si128((const __m128i *)(const void *)(v + 16 * q)), x01, x23));
  }
  _mm_storeu_si128((__m128i *)(void *)s, sw);
  _mm_storeu_si128((__m128i *)(void *)(s + 4), sv);
}

#endif /* COACH_ENGINE_SSE2_H */
