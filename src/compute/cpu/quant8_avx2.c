/*
 * quant8_avx2.c — the int8-activation kernels for AVX2 (+FMA, F16C, BMI2): the activation
 * quantizer (identical to quantize_act8_portable), and the tiles of quant8_tiles.h with
 * maddubs as the product. quant8_avx512.c reuses the quantizer.
 */
#define QUANT8_VNNI    0
#define QUANT8_ZMM     0
#define QUANT8_ROWS_FN quant8_rows_avx2
#include "compute/cpu/quant8_tiles.h"

#include <float.h>
#include <math.h>

/* q4 from token 0's codes (act8_pos4): per 32-byte block, each 16-byte lane's even bytes then
 * odd bytes, the lanes' halves gathered into [evens | odds]; blocks in pairs when groups have
 * two or more: [evens A | evens B], [odds A | odds B]. */
static void decode_order4(quant_act8 *a) {
    const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0,
                                           2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    const int pairs = a->group_size >= 64;
    for (int b = 0; b < a->blocks; b += 1 + pairs) {
        const __m256i *in = (const __m256i *)(a->q + (int64_t)b * QUANT8_BLOCK);
        __m256i *out = (__m256i *)(a->q4 + (int64_t)b * QUANT8_BLOCK);
        /* [evens | odds] of one block */
        __m256i e0 =
            _mm256_permute4x64_epi64(_mm256_shuffle_epi8(_mm256_loadu_si256(in), split), 0xd8);
        if (!pairs) {
            _mm256_storeu_si256(out, e0);
            continue;
        }
        __m256i e1 =
            _mm256_permute4x64_epi64(_mm256_shuffle_epi8(_mm256_loadu_si256(in + 1), split), 0xd8);
        _mm256_storeu_si256(out, _mm256_permute2x128_si256(e0, e1, 0x20));
        _mm256_storeu_si256(out + 1, _mm256_permute2x128_si256(e0, e1, 0x31));
    }
}

void quantize_act8_avx2(quant_act8 *a, const float *x, int t0, int t1) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int t = t0; t < t1; t++) {
        const float *xt = x + (int64_t)t * a->cols;
        for (int b = 0; b < a->blocks; b++) {
            const float *xb = xt + (int64_t)b * QUANT8_BLOCK;
            __m256 v[4], m = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
            UNROLL for (int i = 0; i < 4; i++) {
                v[i] = _mm256_loadu_ps(xb + 8 * i);
                __m256 ax = _mm256_and_ps(v[i], abs_mask);
                /* Inf or NaN (unordered compares true); max_ps returns its second operand when
                 * one is NaN, so m keeps the finite maximum as fmaxf does */
                bad = _mm256_or_ps(bad, _mm256_cmp_ps(ax, _mm256_set1_ps(FLT_MAX), _CMP_NLE_UQ));
                m = _mm256_max_ps(ax, m);
            }
            __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
            const float max = _mm_cvtss_f32(m4);
            const bool finite = !_mm256_movemask_ps(bad), zero = !finite || max < QUANT8_TINY;
            const __m256 inv = _mm256_set1_ps(zero ? 0 : 127.0f / max);
            __m256i c[4];
            UNROLL for (int i = 0; i < 4; i++) c[i] =
                zero ? _mm256_setzero_si256() : _mm256_cvtps_epi32(_mm256_mul_ps(v[i], inv));
            /* int32 -> int8 keeping order: packs interleave 128-bit lanes, the permute undoes it */
            __m256i w16 =
                _mm256_packs_epi16(_mm256_packs_epi32(c[0], c[1]), _mm256_packs_epi32(c[2], c[3]));
            __m256i codes = _mm256_permutevar8x32_epi32(w16, order);
            _mm256_storeu_si256((__m256i *)(a->q + act8_at(a, t, b) * QUANT8_BLOCK), codes);
            a->dx[act8_at(a, t, b)] = !finite ? NAN : zero ? 0 : max / 127.0f;
            a->csum[act8_at(a, t, b)] = hsum_i32(
                _mm256_add_epi32(_mm256_add_epi32(c[0], c[1]), _mm256_add_epi32(c[2], c[3])));
        }
    }
    if (a->q4) decode_order4(a);
    /* The group sums in the reference's order (quant8_portable.c). */
    const int bpg = a->group_size / QUANT8_BLOCK;
    for (int t = t0; t < t1; t++)
        for (int g = 0; g < a->groups; g++) {
            __m128 xs = _mm_setzero_ps();
            for (int b = g * bpg; b < (g + 1) * bpg; b++)
                xs = _mm_fmadd_ss(_mm_set_ss(a->dx[act8_at(a, t, b)]),
                                  _mm_set_ss((float)a->csum[act8_at(a, t, b)]), xs);
            a->xs[act8_at(a, t, g)] = _mm_cvtss_f32(xs);
        }
}
