/*
 * dense_avx2.c — AVX2+FMA kernels for dense F32/F16/BF16 weights in panel order (compute.h):
 * each load of a panel column gives 16 rows' weights for one k, turned into two f32 vectors
 * (BF16: a shift and a mask) and used for every token of a tile by broadcasting x[t][k]: two
 * FMAs per token, all accumulators in registers, no packing and no horizontal sums. The one
 * kernel serves decode (memory-bound: two panels at once, so two streams keep enough loads in
 * flight) and prefill (compute-bound: 16 rows × 6 tokens, twelve accumulators). Each output is
 * one fma chain over k in order, as in every variant (bit-identical results).
 *
 * The loops over tokens have compile-time trip counts and are unrolled explicitly (GCC at -O2
 * otherwise keeps the accumulator arrays in memory).
 */
#include "compute/cpu/kernels.h"
#include "compute/cpu/simd_avx2.h"

#include <immintrin.h>
#include <stdlib.h>

/* How far ahead decode asks for weights in each of its two streams (1B tg16, dev VM, 3 rounds
 * alternating builds: none 6.7-7.4 tok/s, 512-2048 bytes 7.3-9.7; 1024 as the old row kernel). */
#ifndef DECODE_AHEAD
#define DECODE_AHEAD 1024
#endif
#define PANEL_TOKENS 6 /* tokens per tile: 12 accumulators + 2 weight vectors + 1 broadcast */

/* dtype_size() inlined for the three dense types. */
static inline size_t elem_bytes(enum dtype dt) {
    return dt == DT_F32 ? 4 : 2;
}

/* Column k of a panel as f32: rows 0-7 in *lo, rows 8-15 in *hi. */
ALWAYS_INLINE void panel_column(const void *panel, int64_t k, enum dtype dt, __m256 *lo,
                                __m256 *hi) {
    if (dt == DT_BF16) {
        __m256i v =
            _mm256_load_si256((const __m256i *)((const uint16_t *)panel + k * WEIGHT_PANEL));
        *lo = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
        *hi = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32((int)0xffff0000u)));
    } else if (dt == DT_F16) {
        const __m128i *h = (const __m128i *)((const uint16_t *)panel + k * WEIGHT_PANEL);
        *lo = _mm256_cvtph_ps(_mm_load_si128(h));
        *hi = _mm256_cvtph_ps(_mm_load_si128(h + 1));
    } else {
        *lo = _mm256_load_ps((const float *)panel + k * WEIGHT_PANEL);
        *hi = _mm256_load_ps((const float *)panel + k * WEIGHT_PANEL + 8);
    }
}

/* Stores rows [0, nr) of one token's two accumulators at y. */
ALWAYS_INLINE void store_rows(float *y, __m256 lo, __m256 hi, int nr) {
    if (nr == WEIGHT_PANEL) {
        _mm256_storeu_ps(y, lo);
        _mm256_storeu_ps(y + 8, hi);
        return;
    }
    float tmp[WEIGHT_PANEL] __attribute__((aligned(32)));
    _mm256_store_ps(tmp, lo);
    _mm256_store_ps(tmp + 8, hi);
    for (int i = 0; i < nr; i++) y[i] = tmp[i];
}

/* acc[t] += column (lo, hi) · x[t][k] for NT tokens: two FMAs on one broadcast each. */
ALWAYS_INLINE void column_fmas(__m256 acc[][2], __m256 lo, __m256 hi, const float *x, int64_t cols,
                               int64_t k, const int NT) {
#pragma GCC unroll 6
    for (int t = 0; t < NT; t++) {
        __m256 xb = _mm256_broadcast_ss(x + t * cols + k);
        acc[t][0] = _mm256_fmadd_ps(lo, xb, acc[t][0]);
        acc[t][1] = _mm256_fmadd_ps(hi, xb, acc[t][1]);
    }
}

/* y[t][0 .. nr) for NT tokens from one panel. ahead + k · ahead_step is asked for at column k:
 * this tile's share of the next panel (the row range's panels come from memory once, then from
 * L1/L2 for the other token tiles; 16 tokens on 8192 x 2048 bf16, one core: 50-62 -> 61-68
 * GFLOP/s with the whole next panel asked for by each tile). */
ALWAYS_INLINE void panel_tile(float *y, int64_t ldy, const float *x, int64_t cols,
                              const void *panel, const char *ahead, int64_t ahead_step, int nr,
                              enum dtype dt, const int NT) {
    __m256 acc[PANEL_TOKENS][2];
#pragma GCC unroll 6
    for (int t = 0; t < NT; t++) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
#pragma GCC unroll 2
    for (int64_t k = 0; k < cols; k++) {
        _mm_prefetch(ahead + k * ahead_step, _MM_HINT_T0);
        __m256 lo, hi;
        panel_column(panel, k, dt, &lo, &hi);
        column_fmas(acc, lo, hi, x, cols, k, NT);
    }
#pragma GCC unroll 6
    for (int t = 0; t < NT; t++) store_rows(y + t * ldy, acc[t][0], acc[t][1], nr);
}

/* NT (1..3) tokens over two whole panels (32 rows) at once: twice the independent chains of
 * one panel, and two sequential streams asked for DECODE_AHEAD bytes ahead. The panels take
 * turns within a column so that only two weight vectors are live (12 accumulators at NT 3).
 * Xeon, AVX2, 2 cores, 3 rounds against one panel at a time: smollm-135m pp2 124-134 -> 138-157
 * tok/s, pp3 189-192 -> 201-229; 1B pp3 21-23 -> 22-24. Four to six tokens as two such passes
 * were slower (1B pp4 30-32 -> 24-26), so they keep the one-panel tile. */
ALWAYS_INLINE void panel_pair(float *y, int64_t ldy, const float *x, int64_t cols,
                              const void *panel, enum dtype dt, const int NT) {
    const char *next = (const char *)panel + cols * WEIGHT_PANEL * elem_bytes(dt);
    __m256 a[3][2], b[3][2]; /* the first panel's accumulators, the second's */
#pragma GCC unroll 3
    for (int t = 0; t < NT; t++) a[t][0] = a[t][1] = b[t][0] = b[t][1] = _mm256_setzero_ps();
    const char *p0 = (const char *)panel + DECODE_AHEAD, *p1 = next + DECODE_AHEAD;
    const int64_t step = WEIGHT_PANEL * (int64_t)elem_bytes(dt);
    for (int64_t k = 0; k < cols; k++) {
#if DECODE_AHEAD
        _mm_prefetch(p0 + k * step, _MM_HINT_T0);
        _mm_prefetch(p1 + k * step, _MM_HINT_T0);
#else
        (void)p0, (void)p1, (void)step;
#endif
        __m256 lo, hi;
        panel_column(panel, k, dt, &lo, &hi);
        column_fmas(a, lo, hi, x, cols, k, NT);
        panel_column(next, k, dt, &lo, &hi);
        column_fmas(b, lo, hi, x, cols, k, NT);
    }
#pragma GCC unroll 3
    for (int t = 0; t < NT; t++) {
        store_rows(y + t * ldy, a[t][0], a[t][1], WEIGHT_PANEL);
        store_rows(y + t * ldy + WEIGHT_PANEL, b[t][0], b[t][1], WEIGHT_PANEL);
    }
}

ALWAYS_INLINE void panel_rows(float *y, int64_t ldy, const float *x, int n, const weight *w,
                              int64_t r0, int64_t r1, enum dtype dt) {
    const int64_t cols = w->cols;
    const size_t panel_bytes = (size_t)(cols * WEIGHT_PANEL) * elem_bytes(dt);
    const char *base = w->data;
    for (int64_t r = r0; r < r1;) {
        const void *panel = base + (size_t)(r / WEIGHT_PANEL) * panel_bytes;
        if (n <= 3 && r1 - r >= 2 * WEIGHT_PANEL) { /* decode of one to three sequences */
            if (n == 1)
                panel_pair(y + r, ldy, x, cols, panel, dt, 1);
            else if (n == 2)
                panel_pair(y + r, ldy, x, cols, panel, dt, 2);
            else
                panel_pair(y + r, ldy, x, cols, panel, dt, 3);
            r += 2 * WEIGHT_PANEL;
            continue;
        }
        int nr = r1 - r < WEIGHT_PANEL ? (int)(r1 - r) : WEIGHT_PANEL;
        /* the next panel of the range, or this one again (a prefetch must not leave the data) */
        const char *next = r + nr < r1 ? (const char *)panel + panel_bytes : panel;
        /* each token tile asks for its share of the next panel, so the reads from memory are
         * spread over all of this panel's tiles instead of crowding the first (Xeon, AVX2, 2
         * cores, 3 rounds: 1B pp16 49-56 -> 57-61 tok/s, smollm-135m pp16 381-442 -> 463-501) */
        const int tiles = (n + PANEL_TOKENS - 1) / PANEL_TOKENS;
        const int64_t col_bytes = WEIGHT_PANEL * (int64_t)elem_bytes(dt);
        const int64_t step = (col_bytes + tiles - 1) / tiles;
        const int64_t share = (int64_t)(panel_bytes / (size_t)tiles) & ~(int64_t)63;
        int t = 0, tile = 0;
        for (; t + PANEL_TOKENS <= n; t += PANEL_TOKENS, tile++)
            panel_tile(y + t * ldy + r, ldy, x + t * cols, cols, panel, next + tile * share, step,
                       nr, dt, PANEL_TOKENS);
        const char *ahead = next + tile * share;
        float *yt = y + t * ldy + r;
        const float *xt = x + t * cols;
#define TAIL(N)                                                                                    \
    case N:                                                                                        \
        panel_tile(yt, ldy, xt, cols, panel, ahead, step, nr, dt, N);                              \
        break;
        switch (n - t) {
            TAIL(1)
            TAIL(2)
            TAIL(3)
            TAIL(4)
            TAIL(5)
        default:
            break;
        }
#undef TAIL
        r += nr;
    }
}

/* ---- the copy into panel order, at load ---- */

/* Transposes 8 rows of 8 16-bit values in place (row i becomes column i). */
ALWAYS_INLINE void transpose8_epi16(__m128i r[8]) {
    __m128i t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm_unpacklo_epi16(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm_unpackhi_epi16(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
        u[i * 4 + 0] = _mm_unpacklo_epi32(t[i * 4 + 0], t[i * 4 + 2]);
        u[i * 4 + 1] = _mm_unpackhi_epi32(t[i * 4 + 0], t[i * 4 + 2]);
        u[i * 4 + 2] = _mm_unpacklo_epi32(t[i * 4 + 1], t[i * 4 + 3]);
        u[i * 4 + 3] = _mm_unpackhi_epi32(t[i * 4 + 1], t[i * 4 + 3]);
    }
    for (int i = 0; i < 4; i++) {
        r[2 * i] = _mm_unpacklo_epi64(u[i], u[i + 4]);
        r[2 * i + 1] = _mm_unpackhi_epi64(u[i], u[i + 4]);
    }
}

/* One whole panel (16 rows) of 2-byte values, 8 columns at a time: two 8x8 transposes give
 * each column's rows 0-7 and 8-15, stored in BF16's interleaved order or in row order. */
static void pack_panel16(uint8_t *dst, const uint16_t *src, int64_t cols, bool interleave) {
    int64_t k = 0;
    for (; k + 8 <= cols; k += 8) {
        __m128i a[8], b[8];
        for (int i = 0; i < 8; i++) {
            a[i] = _mm_loadu_si128((const __m128i *)(src + i * cols + k));
            b[i] = _mm_loadu_si128((const __m128i *)(src + (i + 8) * cols + k));
        }
        transpose8_epi16(a);
        transpose8_epi16(b);
        for (int j = 0; j < 8; j++) {
            __m128i *d = (__m128i *)(dst + (k + j) * WEIGHT_PANEL * 2);
            _mm_storeu_si128(d, interleave ? _mm_unpacklo_epi16(a[j], b[j]) : a[j]);
            _mm_storeu_si128(d + 1, interleave ? _mm_unpackhi_epi16(a[j], b[j]) : b[j]);
        }
    }
    for (; k < cols; k++)
        for (int i = 0; i < WEIGHT_PANEL; i++)
            ((uint16_t *)dst)[k * WEIGHT_PANEL + (interleave ? panel_slot(DT_BF16, i) : i)] =
                src[i * cols + k];
}

/* The same for f32: 8x8 float transposes. */
static void pack_panel32(void *dst, const void *src, int64_t cols) {
    float *d = dst;
    const float *s = src;
    int64_t k = 0;
    for (; k + 8 <= cols; k += 8)
        for (int half = 0; half < 2; half++) {
            __m256 v[8];
            for (int i = 0; i < 8; i++) v[i] = _mm256_loadu_ps(s + (half * 8 + i) * cols + k);
            transpose8(v);
            for (int j = 0; j < 8; j++)
                _mm256_storeu_ps(d + (k + j) * WEIGHT_PANEL + half * 8, v[j]);
        }
    for (; k < cols; k++)
        for (int i = 0; i < WEIGHT_PANEL; i++) d[k * WEIGHT_PANEL + i] = s[i * cols + k];
}

static void pack_panels_avx2(uint8_t *dst, const weight *w, int64_t p0, int64_t p1) {
    const size_t es = dtype_size(w->dtype);
    const size_t panel_bytes = (size_t)(WEIGHT_PANEL * w->cols) * es;
    for (int64_t p = p0; p < p1; p++) {
        if ((p + 1) * WEIGHT_PANEL > w->rows) { /* the partial last panel, zero-padded */
            pack_panels_portable(dst, w, p, p + 1);
            continue;
        }
        const void *rows = (const uint8_t *)w->data + (size_t)(p * WEIGHT_PANEL * w->cols) * es;
        if (es == 2)
            pack_panel16(dst + (size_t)p * panel_bytes, rows, w->cols, w->dtype == DT_BF16);
        else
            pack_panel32(dst + (size_t)p * panel_bytes, rows, w->cols);
    }
}

static void dense_rows_avx2(float *y, int64_t ldy, const float *x, int n, const weight *w,
                            int64_t r0, int64_t r1) {
    DENSE_BY_DTYPE(panel_rows, y, ldy, x, n, w, r0, r1);
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
    .pack_panels = pack_panels_avx2,
    .quant_rows = quant_rows_avx2,
    .quantize_act = quantize_act_avx2,
    .quant8_rows = quant8_rows_avx2,
    .quantize_act8 = quantize_act8_avx2,
    .dot = dot_avx2,
    .attend = attend_avx2,
    .silu_mul = silu_mul_avx2,
    .axpy = axpy_avx2,
};
