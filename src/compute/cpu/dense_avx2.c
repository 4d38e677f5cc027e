/*
 * dense_avx2.c — AVX2+FMA kernels for dense F32/F16/BF16 weights. A tile is 4 weight rows by
 * up to 3 tokens: each 8-wide slice of a row is converted to f32 once and used for every token
 * of the tile (12 accumulators + 4 row registers fit the 16 ymm registers). Decode (1 token)
 * streams the weights once; prefill reuses each loaded slice three times.
 */
#include "compute/cpu/kernels.h"

#include <immintrin.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE __m256 load8(const void *base, int64_t i, enum dtype dt) {
    if (dt == DT_BF16) {
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)base + i));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    if (dt == DT_F16)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)base + i)));
    return _mm256_loadu_ps((const float *)base + i);
}

ALWAYS_INLINE float load1(const void *base, int64_t i, enum dtype dt) {
    if (dt == DT_BF16) return bf16_to_f32(((const uint16_t *)base)[i]);
    if (dt == DT_F16) return _cvtsh_ss(((const uint16_t *)base)[i]);
    return ((const float *)base)[i];
}

ALWAYS_INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* NR rows (1..4) x NT tokens (1..3) starting at row r. */
ALWAYS_INLINE void tile(float *y, int64_t ldy, const float *x, int64_t cols, const void *w,
                        enum dtype dt, int64_t r, const int NR, const int NT) {
    __m256 acc[4][3];
    for (int i = 0; i < NR; i++)
        for (int t = 0; t < NT; t++) acc[i][t] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= cols; k += 8) {
        __m256 xv[3];
        for (int t = 0; t < NT; t++) xv[t] = _mm256_loadu_ps(x + t * cols + k);
        for (int i = 0; i < NR; i++) {
            __m256 wv = load8(w, (r + i) * cols + k, dt);
            for (int t = 0; t < NT; t++) acc[i][t] = _mm256_fmadd_ps(wv, xv[t], acc[i][t]);
        }
    }
    for (int i = 0; i < NR; i++)
        for (int t = 0; t < NT; t++) {
            float s = hsum(acc[i][t]);
            for (int64_t j = k; j < cols; j++)
                s += load1(w, (r + i) * cols + j, dt) * x[t * cols + j];
            y[t * ldy + r + i] = s;
        }
}

ALWAYS_INLINE void rows_dt(float *y, int64_t ldy, const float *x, int n, const weight *w,
                           int64_t r0, int64_t r1, enum dtype dt) {
    const int64_t cols = w->cols;
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        int t = 0;
        for (; t + 3 <= n; t += 3) tile(y + t * ldy, ldy, x + t * cols, cols, w->data, dt, r, 4, 3);
        if (n - t == 2) tile(y + t * ldy, ldy, x + t * cols, cols, w->data, dt, r, 4, 2);
        if (n - t == 1) tile(y + t * ldy, ldy, x + t * cols, cols, w->data, dt, r, 4, 1);
    }
    for (; r < r1; r++)
        for (int t = 0; t < n; t++)
            tile(y + t * ldy, ldy, x + t * cols, cols, w->data, dt, r, 1, 1);
}

static void dense_rows_avx2(float *y, int64_t ldy, const float *x, int n, const weight *w,
                            int64_t r0, int64_t r1) {
    switch (w->dtype) {
    case DT_BF16:
        rows_dt(y, ldy, x, n, w, r0, r1, DT_BF16);
        break;
    case DT_F16:
        rows_dt(y, ldy, x, n, w, r0, r1, DT_F16);
        break;
    default:
        rows_dt(y, ldy, x, n, w, r0, r1, DT_F32);
        break;
    }
}

static float dot_avx2(const float *a, const float *b, int n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    float s = hsum(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static void axpy_avx2(float *y, float a, const float *x, int n) {
    __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i,
                         _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

const cpu_kernels cpu_kernels_avx2 = {
    .name = "avx2",
    .dense_rows = dense_rows_avx2,
    .quant_rows = quant_rows_avx2,
    .quantize_act = quantize_act_avx2,
    .dot = dot_avx2,
    .axpy = axpy_avx2,
};
