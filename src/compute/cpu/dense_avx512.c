/*
 * dense_avx512.c — AVX-512 prefill for dense F32/F16/BF16 weights: a panel of 32 weight rows
 * packed once as f32 ([k][32], dense_pack_panel) and a 32-row × 12-token outer-product kernel
 * (24 zmm accumulators, two panel loads and twelve broadcasts per k). Twice the FLOPs per
 * instruction of the AVX2 kernel, for CPUs with two 512-bit FMA units. Few tokens (decode)
 * are memory-bound and keep the AVX2 kernel. Only called after dispatch.c checked AVX-512F.
 */
#include "compute/cpu/kernels.h"

#include <immintrin.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define PANEL         32
#define PANEL_TOKENS  12
#define PACK_MIN      6 /* as dense_avx2.c: below this, the unpacked kernel */

/* y[t][r .. r+nr) for NT tokens from a packed panel. */
ALWAYS_INLINE void panel_tile(float *y, int64_t ldy, const float *x, int64_t cols,
                              const float *panel, int nr, const int NT) {
    __m512 acc[PANEL_TOKENS][2];
#pragma GCC unroll 12
    for (int t = 0; t < NT; t++) acc[t][0] = acc[t][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < cols; k++) {
        __m512 w0 = _mm512_load_ps(panel + k * PANEL), w1 = _mm512_load_ps(panel + k * PANEL + 16);
#pragma GCC unroll 12
        for (int t = 0; t < NT; t++) {
            __m512 xb = _mm512_set1_ps(x[t * cols + k]);
            acc[t][0] = _mm512_fmadd_ps(w0, xb, acc[t][0]);
            acc[t][1] = _mm512_fmadd_ps(w1, xb, acc[t][1]);
        }
    }
    __mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? 0xffff : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
#pragma GCC unroll 12
    for (int t = 0; t < NT; t++) {
        _mm512_mask_storeu_ps(y + t * ldy, m0, acc[t][0]);
        _mm512_mask_storeu_ps(y + t * ldy + 16, m1, acc[t][1]);
    }
}

/* The tail of fewer than 12 tokens, with a compile-time count each. */
static void panel_tail(float *y, int64_t ldy, const float *x, int64_t cols, const float *panel,
                       int nr, int nt) {
    switch (nt) {
    case 1:
        panel_tile(y, ldy, x, cols, panel, nr, 1);
        break;
    case 2:
        panel_tile(y, ldy, x, cols, panel, nr, 2);
        break;
    case 3:
        panel_tile(y, ldy, x, cols, panel, nr, 3);
        break;
    case 4:
        panel_tile(y, ldy, x, cols, panel, nr, 4);
        break;
    case 5:
        panel_tile(y, ldy, x, cols, panel, nr, 5);
        break;
    case 6:
        panel_tile(y, ldy, x, cols, panel, nr, 6);
        break;
    case 7:
        panel_tile(y, ldy, x, cols, panel, nr, 7);
        break;
    case 8:
        panel_tile(y, ldy, x, cols, panel, nr, 8);
        break;
    case 9:
        panel_tile(y, ldy, x, cols, panel, nr, 9);
        break;
    case 10:
        panel_tile(y, ldy, x, cols, panel, nr, 10);
        break;
    case 11:
        panel_tile(y, ldy, x, cols, panel, nr, 11);
        break;
    default:
        break;
    }
}

void dense_rows_avx512(float *y, int64_t ldy, const float *x, int n, const weight *w, int64_t r0,
                       int64_t r1) {
    const int64_t cols = w->cols;
    float *panel = n >= PACK_MIN ? dense_panel_buffer(cols * PANEL) : NULL;
    if (!panel) { /* decode, or out of memory: the AVX2 kernel */
        cpu_kernels_avx2.dense_rows(y, ldy, x, n, w, r0, r1);
        return;
    }
    for (int64_t r = r0; r < r1; r += PANEL) {
        int nr = r1 - r < PANEL ? (int)(r1 - r) : PANEL;
        dense_pack_panel(panel, PANEL, w, r, nr);
        int t = 0;
        for (; t + PANEL_TOKENS <= n; t += PANEL_TOKENS)
            panel_tile(y + t * ldy + r, ldy, x + t * cols, cols, panel, nr, PANEL_TOKENS);
        if (t < n) panel_tail(y + t * ldy + r, ldy, x + t * cols, cols, panel, nr, n - t);
    }
}
