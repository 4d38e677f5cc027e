/*
 * dense_avx512.c — AVX-512 prefill for dense F32/F16/BF16 weights in panel order (compute.h):
 * two panels (32 rows) × 12 tokens, 24 zmm accumulators, two panel columns and twelve
 * broadcasts per k. Twice the FLOPs per instruction of the AVX2 kernel, for CPUs with two
 * 512-bit FMA units. Few tokens (decode) are memory-bound and keep the AVX2 kernel; both
 * compute every output as the same fma chain, so results do not depend on which one ran. Only
 * called after dispatch.c checked AVX-512F.
 */
#include "compute/cpu/kernels.h"

#include <immintrin.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define PANEL_TOKENS  12
#define ZMM_MIN       6 /* fewer tokens: the AVX2 kernel */

/* Column k of a panel as 16 f32 lanes; BF16 lanes come in its column order (rows 0, 8, 1, …). */
ALWAYS_INLINE __m512 panel_column(const void *panel, int64_t k, enum dtype dt) {
    const uint16_t *h = (const uint16_t *)panel + k * WEIGHT_PANEL;
    if (dt == DT_BF16)
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_load_si256((const __m256i *)h)), 16));
    if (dt == DT_F16) return _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)h));
    return _mm512_load_ps((const float *)panel + k * WEIGHT_PANEL);
}

/* Stores rows [0, nr) of accumulator v at y, lanes put back in row order. */
ALWAYS_INLINE void store_rows(float *y, __m512 v, int nr, enum dtype dt) {
    if (dt == DT_BF16) /* row i sits in lane panel_slot(i) */
        v = _mm512_permutexvar_ps(
            _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15), v);
    _mm512_mask_storeu_ps(y, nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1), v);
}

/* y[t][0 .. 16·NP) for NT tokens from NP (1 or 2) consecutive panels; nr rows of the last.
 * ahead + k · step is asked for at column k (this tile's share of the next panels). */
ALWAYS_INLINE void panel_tile(float *y, int64_t ldy, const float *x, int64_t cols,
                              const void *panel, size_t panel_bytes, const char *ahead,
                              int64_t step, int nr, enum dtype dt, const int NP, const int NT) {
    const void *next = (const char *)panel + panel_bytes;
    __m512 acc[PANEL_TOKENS][2];
#pragma GCC unroll 12
    for (int t = 0; t < NT; t++) acc[t][0] = acc[t][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < cols; k++) {
        _mm_prefetch(ahead + k * step, _MM_HINT_T0);
        __m512 w0 = panel_column(panel, k, dt);
        __m512 w1 = NP == 2 ? panel_column(next, k, dt) : w0;
#pragma GCC unroll 12
        for (int t = 0; t < NT; t++) {
            __m512 xb = _mm512_set1_ps(x[t * cols + k]);
            acc[t][0] = _mm512_fmadd_ps(w0, xb, acc[t][0]);
            if (NP == 2) acc[t][1] = _mm512_fmadd_ps(w1, xb, acc[t][1]);
        }
    }
#pragma GCC unroll 12
    for (int t = 0; t < NT; t++) {
        if (NP == 2) {
            store_rows(y + t * ldy, acc[t][0], WEIGHT_PANEL, dt);
            store_rows(y + t * ldy + WEIGHT_PANEL, acc[t][1], nr, dt);
        } else {
            store_rows(y + t * ldy, acc[t][0], nr, dt);
        }
    }
}

/* The tail of fewer than 12 tokens, with a compile-time count each. */
ALWAYS_INLINE void panel_tail(float *y, int64_t ldy, const float *x, int64_t cols,
                              const void *panel, size_t panel_bytes, const char *ahead,
                              int64_t step, int nr, enum dtype dt, const int NP, int nt) {
#define TAIL(N)                                                                                    \
    case N:                                                                                        \
        panel_tile(y, ldy, x, cols, panel, panel_bytes, ahead, step, nr, dt, NP, N);               \
        break;
    switch (nt) {
        TAIL(1)
        TAIL(2)
        TAIL(3)
        TAIL(4)
        TAIL(5)
        TAIL(6)
        TAIL(7)
        TAIL(8)
        TAIL(9)
        TAIL(10)
        TAIL(11)
    default:
        break;
    }
#undef TAIL
}

/* Every token over NP panels: whole tiles of 12, then the tail. Each tile asks for its share of
 * the next NP panels (`next`), so reads from memory spread over all the tiles (as dense_avx2.c). */
ALWAYS_INLINE void tiles(float *y, int64_t ldy, const float *x, int n, int64_t cols,
                         const void *panel, size_t panel_bytes, const char *next, int nr,
                         enum dtype dt, const int NP) {
    const int n_tiles = (n + PANEL_TOKENS - 1) / PANEL_TOKENS;
    const int64_t region = NP * (int64_t)panel_bytes;
    const int64_t step = (region / cols + n_tiles - 1) / n_tiles;
    const int64_t share = region / n_tiles & ~(int64_t)63;
    int t = 0, i = 0;
    for (; t + PANEL_TOKENS <= n; t += PANEL_TOKENS, i++)
        panel_tile(y + t * ldy, ldy, x + t * cols, cols, panel, panel_bytes, next + i * share, step,
                   nr, dt, NP, PANEL_TOKENS);
    if (t < n)
        panel_tail(y + t * ldy, ldy, x + t * cols, cols, panel, panel_bytes, next + i * share, step,
                   nr, dt, NP, n - t);
}

ALWAYS_INLINE void panel_rows(float *y, int64_t ldy, const float *x, int n, const weight *w,
                              int64_t r0, int64_t r1, enum dtype dt) {
    const int64_t cols = w->cols;
    const size_t panel_bytes = (size_t)(cols * WEIGHT_PANEL) * (dt == DT_F32 ? 4 : 2);
    for (int64_t r = r0; r < r1;) {
        const void *panel = (const char *)w->data + (size_t)(r / WEIGHT_PANEL) * panel_bytes;
        int64_t left = r1 - r;
        int nr = left >= 2 * WEIGHT_PANEL ? WEIGHT_PANEL : (int)(left % WEIGHT_PANEL);
        if (nr == 0) nr = WEIGHT_PANEL;
        int np = left > WEIGHT_PANEL ? 2 : 1; /* the last of them with nr rows */
        int64_t done = (np - 1) * WEIGHT_PANEL + nr;
        /* the panels after these, or these again (a prefetch must not leave the data) */
        const char *next = (const char *)panel + (r + done < r1 ? (size_t)np * panel_bytes : 0);
        if (np == 2)
            tiles(y + r, ldy, x, n, cols, panel, panel_bytes, next, nr, dt, 2);
        else
            tiles(y + r, ldy, x, n, cols, panel, panel_bytes, next, nr, dt, 1);
        r += done;
    }
}

void dense_rows_avx512(float *y, int64_t ldy, const float *x, int n, const weight *w, int64_t r0,
                       int64_t r1) {
    if (n < ZMM_MIN) {
        cpu_kernels_avx2.dense_rows(y, ldy, x, n, w, r0, r1);
        return;
    }
    DENSE_BY_DTYPE(panel_rows, y, ldy, x, n, w, r0, r1);
}
