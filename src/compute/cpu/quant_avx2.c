/*
 * quant_avx2.c — AVX2 kernels for MLX affine-quantized weights (all widths: 2, 3, 4, 5, 6, 8):
 * the tiles of quant_tiles.h with _mm256_madd_epi16 + add as the dot step, and the activation
 * quantizer (int16 per group, the same codes as quantize_act_portable). Compiled with AVX2, FMA,
 * F16C and BMI2.
 */
#define QUANT_DOT_ACC(acc, w, x) _mm256_add_epi32((acc), _mm256_madd_epi16((w), (x)))
#define QUANT_ROWS_FN            quant_rows_avx2
#include "compute/cpu/quant_tiles.h"

/* 8 floats -> 8 int32 codes rint(x·inv) clamped to ±QUANT_ACT_MAX (as quantize_act_portable). */
ALWAYS_INLINE __m256i quant8(const float *x, __m256 inv) {
    __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), inv));
    v = _mm256_min_epi32(v, _mm256_set1_epi32(QUANT_ACT_MAX));
    return _mm256_max_epi32(v, _mm256_set1_epi32(-QUANT_ACT_MAX));
}

/* 16 int32 (two vectors, in order) -> 16 int16 in order. */
ALWAYS_INLINE __m256i pack16(__m256i a, __m256i b) {
    return _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xd8);
}

void quantize_act_avx2(quant_act *a, const float *x, int t0, int t1) {
    const int gs = a->group_size;
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    /* Per 128-bit lane: the 4 even int16 first, then the 4 odd ones. */
    const __m256i even_odd = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,
                                              0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
    for (int t = t0; t < t1; t++) {
        const float *xt = x + (int64_t)t * a->cols;
        int16_t *q = a->q + (int64_t)t * a->cols;
        for (int g = 0; g < a->groups; g++) {
            const float *xg = xt + (int64_t)g * gs;
            __m256 m = _mm256_setzero_ps();
            for (int i = 0; i < gs; i += 8)
                m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(xg + i), abs_mask));
            __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
            float max = _mm_cvtss_f32(m4);
            float inv_s = max > 0 ? (float)QUANT_ACT_MAX / max : 0;
            float dx = max / (float)QUANT_ACT_MAX;
            __m256 inv = _mm256_set1_ps(inv_s);
            __m256i sum = _mm256_setzero_si256();
            for (int i = 0; i < gs; i += 32) {
                __m256i v0 = quant8(xg + i, inv), v1 = quant8(xg + i + 8, inv);
                __m256i v2 = quant8(xg + i + 16, inv), v3 = quant8(xg + i + 24, inv);
                sum = _mm256_add_epi32(
                    sum, _mm256_add_epi32(_mm256_add_epi32(v0, v1), _mm256_add_epi32(v2, v3)));
                __m256i lo = pack16(v0, v1), hi = pack16(v2, v3);
                int16_t *out = q + (int64_t)g * gs + i;
                if (a->bits == 4) { /* even-indexed values first, then odd (quant_portable.c) */
                    lo = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(lo, even_odd), 0xd8);
                    hi = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(hi, even_odd), 0xd8);
                    __m256i ev = _mm256_permute2x128_si256(lo, hi, 0x20);
                    __m256i od = _mm256_permute2x128_si256(lo, hi, 0x31);
                    lo = ev;
                    hi = od;
                }
                _mm256_storeu_si256((__m256i *)out, lo);
                _mm256_storeu_si256((__m256i *)(out + 16), hi);
            }
            const int64_t gi = (int64_t)t * a->groups + g;
            _mm256_storeu_ps(a->dxv + gi * 8, _mm256_set1_ps(dx));
            a->dx[gi] = dx;
            a->xs[gi] = dx * (float)hsum_i32(sum);
        }
    }
}
