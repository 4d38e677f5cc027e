/*
 * dense_avx2.c — AVX2+FMA kernels for dense F32/F16/BF16 weights, in two shapes:
 *
 * - Few tokens (decode): memory-bound. Rows are read one after another (a sequential stream
 *   the hardware prefetcher follows), each 8-wide slice converted to f32 in registers and used
 *   for up to 3 tokens, with four accumulators per token.
 * - Many tokens (prefill): compute-bound. A panel of 16 weight rows is converted once into a
 *   per-thread f32 buffer laid out k-major ([k][16], transposed 8×8 at a time), then a 16-row
 *   × 6-token outer-product kernel runs over every token: two panel loads and six broadcasts
 *   feed twelve FMAs, all accumulators in registers, no horizontal sums.
 *
 * The loops over rows and tokens have compile-time trip counts and are unrolled explicitly
 * (GCC at -O2 otherwise keeps the accumulator arrays in memory).
 */
#include "compute/cpu/kernels.h"
#include "compute/cpu/simd_avx2.h"

#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>

#define STAGE_COLS   32 /* columns of each row staged at once by pack_panel */
#define PANEL        16 /* weight rows per packed panel (two ymm) */
#define PANEL_TOKENS 6  /* tokens per outer-product tile: 12 accumulators */
/* From this many tokens on, packing pays for itself: below it, the packing costs as much as
 * the products (pp8 on smollm-135m bf16 ran 2x faster unpacked; pp16 equal; 2026-11-26). */
#define PACK_MIN 24
/* ...or from PACK_MIN_WIDE tokens when their activations are far larger than L1, where the row
 * kernel's passes (three tokens each) read them from L2 again and again. Dev VM, medians of 3,
 * 2026-11-26: pp16 on the 1B shape 30.6 -> 35.9 tokens/s, on smollm-135m (only its 1536-column
 * down_proj is that wide) 315 -> 327; pp12 2-5% slower packed, hence 16 (a c16 server step). */
#define PACK_MIN_WIDE  16
#define WIDE_ACT_BYTES (64 << 10)
/* How far ahead decode asks for weights. On the dev VM (AMD EPYC, 2026-11-26) the one-token
 * kernel read at 0.87-0.89 of the read bandwidth with 1024 bytes, 0.84-0.86 with 512 and
 * 0.75-0.80 with 2048 (bench/bandwidth -m kernel, alternating builds). */
#ifndef PREFETCH_BYTES
#define PREFETCH_BYTES 1024
#endif
#define PREFETCH_ELEMS(dt) (PREFETCH_BYTES / elem_size(dt))

/* dtype_size() inlined for the three dense types (it sits in the decode loop). */
static inline int64_t elem_size(enum dtype dt) {
    return dt == DT_F32 ? 4 : 2;
}

/* ---- few tokens: dot products straight from the weights ---- */

/* One row × NT tokens (1..3). Rows are read whole, one after another, so a chunk of rows is
 * one sequential stream (rows are often a single 4 KiB page: reading several side by side
 * defeats the hardware prefetcher). Four accumulators per token hide the FMA latency. */
ALWAYS_INLINE void dot_row(float *y, int64_t ldy, const float *x, int64_t cols, const void *w,
                           enum dtype dt, int64_t r, const int NT) {
    __m256 acc[3][4];
#pragma GCC unroll 3
    for (int t = 0; t < NT; t++)
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) acc[t][u] = _mm256_setzero_ps();
    const int64_t base = r * cols;
    int64_t k = 0;
    const char *pf = (const char *)w + (base + PREFETCH_ELEMS(dt)) * elem_size(dt);
    for (; k + 32 <= cols; k += 32) {
        /* Loads alone keep too few cache lines in flight (each 16 bytes of weights costs four
         * instructions here), so ask for the data well ahead. */
        _mm_prefetch(pf + k * elem_size(dt), _MM_HINT_T0);
        if (dt == DT_F32) _mm_prefetch(pf + k * 4 + 64, _MM_HINT_T0);
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) {
            __m256 wv = load8(w, base + k + 8 * u, dt);
#pragma GCC unroll 3
            for (int t = 0; t < NT; t++)
                acc[t][u] =
                    _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + t * cols + k + 8 * u), acc[t][u]);
        }
    }
    for (; k + 8 <= cols; k += 8) {
        __m256 wv = load8(w, base + k, dt);
#pragma GCC unroll 3
        for (int t = 0; t < NT; t++)
            acc[t][0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + t * cols + k), acc[t][0]);
    }
#pragma GCC unroll 3
    for (int t = 0; t < NT; t++) {
        float s = hsum(_mm256_add_ps(_mm256_add_ps(acc[t][0], acc[t][1]),
                                     _mm256_add_ps(acc[t][2], acc[t][3])));
        for (int64_t j = k; j < cols; j++) s += load1(w, base + j, dt) * x[t * cols + j];
        y[t * ldy + r] = s;
    }
}

ALWAYS_INLINE void dot_rows(float *y, int64_t ldy, const float *x, int n, const weight *w,
                            int64_t r0, int64_t r1, enum dtype dt) {
    const int64_t cols = w->cols;
    for (int64_t r = r0; r < r1; r++) {
        int t = 0;
        for (; t + 3 <= n; t += 3) dot_row(y + t * ldy, ldy, x + t * cols, cols, w->data, dt, r, 3);
        if (n - t == 2) dot_row(y + t * ldy, ldy, x + t * cols, cols, w->data, dt, r, 2);
        if (n - t == 1) dot_row(y + t * ldy, ldy, x + t * cols, cols, w->data, dt, r, 1);
    }
}

/* ---- many tokens: packed panels and an outer-product kernel ---- */

/* panel[k * width + i] = w[r + i][k] as f32 for i < nr (rows past nr are zero); width is 16
 * here, 32 for the AVX-512 kernel. Whole groups of 8 rows go through 8×8 transposes. */
ALWAYS_INLINE void pack_panel(float *panel, int width, const void *w, int64_t cols, int64_t r,
                              int nr, enum dtype dt) {
    int full = nr / 8 * 8;
    const int es = dt == DT_F32 ? 4 : 2;
    int64_t k = 0;
    /* Rows whose length is a multiple of 4 KiB (2048 bf16 columns) all map to the same L1 sets:
     * eight of them read side by side 16 bytes at a time evict each other's lines before they
     * are used up. So there, STAGE_COLS columns of each row are first copied whole into a
     * staging block, and the transposes read from that (packing 8192 x 2048 bf16 on one Zen 3
     * core: 7.0 -> 8.2 GB/s; 576 and 1536 columns, no aliasing: no gain, so not staged). */
    uint8_t stage[8 * STAGE_COLS * 4] __attribute__((aligned(32)));
    const bool aliased = cols * es % 4096 == 0;
    for (; aliased && k + STAGE_COLS <= cols; k += STAGE_COLS)
        for (int g = 0; g < full; g += 8) {
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) {
                const uint8_t *src = (const uint8_t *)w + ((r + g + i) * cols + k) * es;
                for (int b = 0; b < STAGE_COLS * es; b += 32)
                    _mm256_store_si256((__m256i *)(stage + i * STAGE_COLS * es + b),
                                       _mm256_loadu_si256((const __m256i *)(src + b)));
            }
            __asm__ volatile("" ::: "memory"); /* keep the staging: GCC would forward it */
#pragma GCC unroll 4
            for (int kk = 0; kk < STAGE_COLS; kk += 8) {
                __m256 v[8];
#pragma GCC unroll 8
                for (int i = 0; i < 8; i++) v[i] = load8(stage, i * STAGE_COLS + kk, dt);
                transpose8(v);
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++) _mm256_store_ps(panel + (k + kk + j) * width + g, v[j]);
            }
        }
    for (; k + 8 <= cols; k += 8)
        for (int g = 0; g < full; g += 8) {
            __m256 v[8];
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) v[i] = load8(w, (r + g + i) * cols + k, dt);
            transpose8(v);
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) _mm256_store_ps(panel + (k + j) * width + g, v[j]);
        }
    /* the columns past the last whole 8, then the rows past the last whole 8 (and padding);
     * one loop over both scanned every column for nothing (6% of a 1B pp16's samples) */
    for (int64_t kk = k; kk < cols; kk++)
        for (int i = 0; i < full; i++) panel[kk * width + i] = load1(w, (r + i) * cols + kk, dt);
    if (full < width)
        for (int64_t kk = 0; kk < cols; kk++)
            for (int i = full; i < width; i++)
                panel[kk * width + i] = i < nr ? load1(w, (r + i) * cols + kk, dt) : 0.0f;
}

void dense_pack_panel(float *panel, int width, const weight *w, int64_t r, int nr) {
    switch (w->dtype) {
    case DT_BF16:
        pack_panel(panel, width, w->data, w->cols, r, nr, DT_BF16);
        break;
    case DT_F16:
        pack_panel(panel, width, w->data, w->cols, r, nr, DT_F16);
        break;
    default:
        pack_panel(panel, width, w->data, w->cols, r, nr, DT_F32);
        break;
    }
}

/* y[t][r .. r+nr) for NT tokens from a packed panel. */
ALWAYS_INLINE void panel_tile(float *y, int64_t ldy, const float *x, int64_t cols,
                              const float *panel, int nr, const int NT) {
    __m256 acc[PANEL_TOKENS][2];
#pragma GCC unroll 6
    for (int t = 0; t < NT; t++) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
    const float *xt[PANEL_TOKENS];
#pragma GCC unroll 6
    for (int t = 0; t < NT; t++) xt[t] = x + t * cols;
#pragma GCC unroll 2
    for (int64_t k = 0; k < cols; k++) {
        __m256 w0 = _mm256_load_ps(panel + k * PANEL), w1 = _mm256_load_ps(panel + k * PANEL + 8);
#pragma GCC unroll 6
        for (int t = 0; t < NT; t++) {
            __m256 xb = _mm256_broadcast_ss(xt[t] + k);
            acc[t][0] = _mm256_fmadd_ps(w0, xb, acc[t][0]);
            acc[t][1] = _mm256_fmadd_ps(w1, xb, acc[t][1]);
        }
    }
    if (nr == PANEL) {
#pragma GCC unroll 6
        for (int t = 0; t < NT; t++) {
            _mm256_storeu_ps(y + t * ldy, acc[t][0]);
            _mm256_storeu_ps(y + t * ldy + 8, acc[t][1]);
        }
        return;
    }
    float tmp[PANEL] __attribute__((aligned(32)));
#pragma GCC unroll 6
    for (int t = 0; t < NT; t++) {
        _mm256_store_ps(tmp, acc[t][0]);
        _mm256_store_ps(tmp + 8, acc[t][1]);
        for (int i = 0; i < nr; i++) y[t * ldy + i] = tmp[i];
    }
}

/* A per-thread panel buffer, grown (rarely) to the widest weight seen: no allocation per
 * token once the first forward pass has run. Freed when its thread ends. */
typedef struct panel_buffer {
    float *data;
    int64_t floats;
} panel_buffer;

static pthread_key_t panel_key;
static pthread_once_t panel_once = PTHREAD_ONCE_INIT;

static void panel_free(void *p) {
    panel_buffer *b = p;
    free(b->data);
    free(b);
}

static void panel_key_create(void) {
    pthread_key_create(&panel_key, panel_free);
}

float *dense_panel_buffer(int64_t floats) {
    pthread_once(&panel_once, panel_key_create);
    panel_buffer *b = pthread_getspecific(panel_key);
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b || pthread_setspecific(panel_key, b) != 0) {
            free(b);
            return NULL;
        }
    }
    if (floats > b->floats) {
        free(b->data);
        b->data = aligned_alloc(64, (size_t)(floats * (int64_t)sizeof(float) + 63) & ~(size_t)63);
        b->floats = b->data ? floats : 0;
    }
    return b->data;
}

ALWAYS_INLINE void panel_rows(float *y, int64_t ldy, const float *x, int n, const weight *w,
                              int64_t r0, int64_t r1, enum dtype dt) {
    const int64_t cols = w->cols;
    float *panel = dense_panel_buffer(cols * PANEL);
    if (!panel) { /* out of memory for 16 rows: fall back to the unpacked kernel */
        dot_rows(y, ldy, x, n, w, r0, r1, dt);
        return;
    }
    for (int64_t r = r0; r < r1; r += PANEL) {
        int nr = r1 - r < PANEL ? (int)(r1 - r) : PANEL;
        pack_panel(panel, PANEL, w->data, cols, r, nr, dt);
        int t = 0;
        for (; t + PANEL_TOKENS <= n; t += PANEL_TOKENS)
            panel_tile(y + t * ldy + r, ldy, x + t * cols, cols, panel, nr, PANEL_TOKENS);
        switch (n - t) {
        case 5:
            panel_tile(y + t * ldy + r, ldy, x + t * cols, cols, panel, nr, 5);
            break;
        case 4:
            panel_tile(y + t * ldy + r, ldy, x + t * cols, cols, panel, nr, 4);
            break;
        case 3:
            panel_tile(y + t * ldy + r, ldy, x + t * cols, cols, panel, nr, 3);
            break;
        case 2:
            panel_tile(y + t * ldy + r, ldy, x + t * cols, cols, panel, nr, 2);
            break;
        case 1:
            panel_tile(y + t * ldy + r, ldy, x + t * cols, cols, panel, nr, 1);
            break;
        default:
            break;
        }
    }
}

ALWAYS_INLINE void rows_dt(float *y, int64_t ldy, const float *x, int n, const weight *w,
                           int64_t r0, int64_t r1, enum dtype dt) {
    if (n >= PACK_MIN || (n >= PACK_MIN_WIDE && (int64_t)n * w->cols * 4 > WIDE_ACT_BYTES))
        panel_rows(y, ldy, x, n, w, r0, r1, dt);
    else
        dot_rows(y, ldy, x, n, w, r0, r1, dt);
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
    .quant8_rows = quant8_rows_avx2,
    .quantize_act8 = quantize_act8_avx2,
    .dot = dot_avx2,
    .attend = attend_avx2,
    .silu_mul = silu_mul_avx2,
    .axpy = axpy_avx2,
};
