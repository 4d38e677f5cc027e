/*
 * simd_avx2.h — private to compute/cpu: the small AVX2 pieces every kernel file uses, written
 * once: loading dense F32/F16/BF16 values (weights, or a quantized weight's scales and biases)
 * as floats, horizontal sums, an 8 × 8 transpose, and the BMI2 spreading of packed codes into
 * bytes. Included by the *_avx2.c / *_avx512.c files and the tile headers they compile.
 */
#ifndef KILN_SIMD_AVX2_H
#define KILN_SIMD_AVX2_H

#include "compute/compute.h"

#include <immintrin.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* 8 consecutive values of dtype dt from index i of p, as floats. */
ALWAYS_INLINE __m256 load8(const void *p, int64_t i, enum dtype dt) {
    if (dt == DT_BF16) {
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)p + i));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    if (dt == DT_F16)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
    return _mm256_loadu_ps((const float *)p + i);
}

/* Value i of p (dtype dt) as a float. */
ALWAYS_INLINE float load1(const void *p, int64_t i, enum dtype dt) {
    if (dt == DT_BF16) return bf16_to_f32(((const uint16_t *)p)[i]);
    if (dt == DT_F16) return _cvtsh_ss(((const uint16_t *)p)[i]);
    return ((const float *)p)[i];
}

ALWAYS_INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

ALWAYS_INLINE int32_t hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* Transposes 8 rows of 8 floats in place (row i becomes column i); also moves int32 lanes
 * exactly, through casts. */
ALWAYS_INLINE void transpose8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* Codes 8j..8j+7 of a 32-code block of BITS-bit codes (they fill BITS whole bytes from byte
 * j·BITS) as 8 bytes. One 8-byte load that stays inside the block (4·BITS bytes), then pdep
 * spreads the low 8·BITS bits into bytes. */
ALWAYS_INLINE uint64_t spread8(const uint8_t *block, const int j, const int BITS) {
    const int off = j * BITS < 4 * BITS - 8 ? j * BITS : 4 * BITS - 8;
    uint64_t v;
    memcpy(&v, block + off, 8);
    return _pdep_u64(v >> (8 * (j * BITS - off)), 0x0101010101010101ull * ((1u << BITS) - 1));
}

#endif
