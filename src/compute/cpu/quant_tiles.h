/*
 * quant_tiles.h — private to compute/cpu: the quantized matmul tiles, written once and compiled
 * once per instruction set. A 32-value chunk of a row's codes is widened to two vectors of 16
 * int16 (8 bits: a zero extension; 4 bits: the low and high nibbles, matching the even/odd
 * layout of the activation codes; 2, 3, 5, 6 bits: BMI2 pdep spreads each 8 codes, which fill
 * `bits` whole bytes, into 8 bytes) and dotted with the int16 activations; each group's int32
 * sums turn into float once: acc += (float)isum · dx · scale; the biases need only the group
 * sums of x. Decode (one token) takes four rows per pass so they share the token's loads;
 * prefill takes tiles of one row by up to four tokens over column slices that stay in L1.
 *
 * The includer defines QUANT_DOT_ACC(acc, w, x) (acc + the pairwise int16 products of w and x,
 * as int32) and QUANT_ROWS_FN (the name of the entry point): quant_avx2.c with madd + add,
 * quant_avx512.c with AVX512-VNNI's vpdpwssd, which does both in one instruction.
 */
#ifndef KILN_QUANT_TILES_H
#define KILN_QUANT_TILES_H

#include "compute/cpu/kernels.h"
#include "compute/cpu/simd_avx2.h"

#include <immintrin.h>
#include <string.h>

#define NT_MAX  4    /* tokens per tile */
#define K_SLICE 1024 /* columns per slice when several tokens share the pass */
/* Bytes ahead in each row's codes (decode), measured with bench/quant_kernels. On a 2-core Xeon
 * slice 4-bit rows read at 0.62 of the read bandwidth with 2048 (0.45 with 768, 0.39 without),
 * 8-bit rows at 0.71 with 768. On the AMD EPYC dev VM (2026-11-26) 2048 gave 0.46-0.50 and
 * 4096 0.62-0.65 for 4-bit, 768 gave 0.66-0.68 and 6144 0.78-0.91 for 8-bit: the farther
 * distances serve the machine kiln is measured on, and cost the Xeon little. */
#define PREFETCH(BITS) ((BITS) == 8 ? 6144 : 4096)
/* Unrolled tile loops keep the per-token accumulators in registers. */
#define UNROLL _Pragma("GCC unroll 8")

/* The 32 codes at p (a chunk starts on a byte: 32 codes are 4·BITS bytes) as int16. */
ALWAYS_INLINE void unpack32(const uint8_t *p, const int BITS, __m256i *w0, __m256i *w1) {
    if (BITS == 8) {
        *w0 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p));
        *w1 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(p + 16)));
    } else if (BITS == 4) {
        __m256i b = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p));
        *w0 = _mm256_and_si256(b, _mm256_set1_epi16(0x0f)); /* even codes */
        *w1 = _mm256_srli_epi16(b, 4);                      /* odd codes */
    } else {
        __m128i lo = _mm_set_epi64x((long long)spread8(p, 1, BITS), (long long)spread8(p, 0, BITS));
        __m128i hi = _mm_set_epi64x((long long)spread8(p, 3, BITS), (long long)spread8(p, 2, BITS));
        *w0 = _mm256_cvtepu8_epi16(lo);
        *w1 = _mm256_cvtepu8_epi16(hi);
    }
}

/* Row r against NT tokens from t, over groups [g0, g1); adds to y unless `first`. */
ALWAYS_INLINE void tile(float *y, int64_t ldy, const quant_act *a, int t, const weight *w,
                        int64_t r, int g0, int g1, bool first, const int BITS, const int NT) {
    const int gs = w->group_size, groups = a->groups;
    const int64_t cols = w->cols;
    const uint8_t *row = (const uint8_t *)w->data + r * (cols * BITS / 8);
    const enum dtype dt = w->scale_dtype;
    __m256 acc[NT_MAX];
    float bias_acc[NT_MAX];
    UNROLL for (int i = 0; i < NT; i++) {
        acc[i] = _mm256_setzero_ps();
        bias_acc[i] = 0;
    }
    for (int g = g0; g < g1; g++) {
        __m256i isum[NT_MAX];
        UNROLL for (int i = 0; i < NT; i++) isum[i] = _mm256_setzero_si256();
        for (int64_t k = (int64_t)g * gs; k < (int64_t)(g + 1) * gs; k += 32) {
            __m256i w0, w1;
            unpack32(row + (uint64_t)k * BITS / 8, BITS, &w0, &w1);
            UNROLL for (int i = 0; i < NT; i++) {
                const int16_t *xq = a->q + (int64_t)(t + i) * cols + k;
                isum[i] = QUANT_DOT_ACC(isum[i], w0, _mm256_loadu_si256((const __m256i *)xq));
                isum[i] =
                    QUANT_DOT_ACC(isum[i], w1, _mm256_loadu_si256((const __m256i *)(xq + 16)));
            }
        }
        const __m256 sv = _mm256_set1_ps(load1(w->scales, r * groups + g, dt));
        UNROLL for (int i = 0; i < NT; i++) {
            const int64_t gi = (int64_t)(t + i) * groups + g;
            __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(isum[i]), _mm256_loadu_ps(a->dxv + gi * 8));
            acc[i] = _mm256_fmadd_ps(v, sv, acc[i]);
        }
    }
    /* The biases' part, Σ_g bias_g·xs_g, 8 groups at a time. */
    int g = g0;
    for (; g + 8 <= g1; g += 8) {
        const __m256 b8 = load8(w->biases, r * groups + g, dt);
        UNROLL for (int i = 0; i < NT; i++) acc[i] =
            _mm256_fmadd_ps(b8, _mm256_loadu_ps(a->xs + (int64_t)(t + i) * groups + g), acc[i]);
    }
    for (; g < g1; g++) {
        const float b = load1(w->biases, r * groups + g, dt);
        UNROLL for (int i = 0; i < NT; i++) bias_acc[i] += b * a->xs[(int64_t)(t + i) * groups + g];
    }
    UNROLL for (int i = 0; i < NT; i++) {
        float v = hsum(acc[i]) + bias_acc[i];
        float *out = y + (int64_t)(t + i) * ldy + r;
        *out = first ? v : *out + v;
    }
}

/* One token against NR rows from r (decode): the token's activations are loaded once per
 * chunk and used for every row; scales and biases are converted 8 groups at a time, and each
 * group costs one conversion and one FMA (scale·dx comes from a small table). */
ALWAYS_INLINE void tile_rows(float *y, const quant_act *a, int t, const weight *w, int64_t r,
                             const int BITS, const int NR) {
    const int gs = w->group_size, groups = a->groups;
    const int64_t cols = w->cols, row_bytes = cols * BITS / 8;
    const uint8_t *rows = (const uint8_t *)w->data + r * row_bytes;
    const int16_t *xq = a->q + (int64_t)t * cols;
    const float *dx = a->dx + (int64_t)t * groups, *xs = a->xs + (int64_t)t * groups;
    const enum dtype dt = w->scale_dtype;
    __m256 acc[4], bias_acc[4];
    float sdx[4][8] __attribute__((aligned(32)));
    UNROLL for (int i = 0; i < NR; i++) {
        acc[i] = _mm256_setzero_ps();
        bias_acc[i] = _mm256_setzero_ps();
    }
    for (int g0 = 0; g0 < groups; g0 += 8) {
        const int gn = groups - g0 < 8 ? groups - g0 : 8;
        if (gn == 8) {
            const __m256 dx8 = _mm256_loadu_ps(dx + g0), xs8 = _mm256_loadu_ps(xs + g0);
            UNROLL for (int i = 0; i < NR; i++) {
                const int64_t si = (r + i) * groups + g0;
                _mm256_store_ps(sdx[i], _mm256_mul_ps(load8(w->scales, si, dt), dx8));
                bias_acc[i] = _mm256_fmadd_ps(load8(w->biases, si, dt), xs8, bias_acc[i]);
            }
        } else {
            UNROLL for (int i = 0; i < NR; i++) for (int k = 0; k < gn; k++) {
                const int64_t si = (r + i) * groups + g0 + k;
                sdx[i][k] = load1(w->scales, si, dt) * dx[g0 + k];
                acc[i] = _mm256_add_ps(acc[i], _mm256_setr_ps(load1(w->biases, si, dt) * xs[g0 + k],
                                                              0, 0, 0, 0, 0, 0, 0));
            }
        }
        for (int gk = 0; gk < gn; gk++) {
            const int g = g0 + gk;
            /* Prefetch each row's stream ahead: the four rows are four streams. */
            UNROLL for (int i = 0; i < NR; i++) _mm_prefetch(
                (const char *)rows + i * row_bytes + (int64_t)g * gs * BITS / 8 + PREFETCH(BITS),
                _MM_HINT_T0);
            __m256i isum[4];
            UNROLL for (int i = 0; i < NR; i++) isum[i] = _mm256_setzero_si256();
            for (int64_t k = (int64_t)g * gs; k < (int64_t)(g + 1) * gs; k += 32) {
                __m256i x0 = _mm256_loadu_si256((const __m256i *)(xq + k));
                __m256i x1 = _mm256_loadu_si256((const __m256i *)(xq + k + 16));
                UNROLL for (int i = 0; i < NR; i++) {
                    __m256i w0, w1;
                    unpack32(rows + i * row_bytes + (uint64_t)k * BITS / 8, BITS, &w0, &w1);
                    isum[i] = QUANT_DOT_ACC(QUANT_DOT_ACC(isum[i], w0, x0), w1, x1);
                }
            }
            UNROLL for (int i = 0; i < NR; i++) acc[i] = _mm256_fmadd_ps(
                _mm256_cvtepi32_ps(isum[i]), _mm256_broadcast_ss(&sdx[i][gk]), acc[i]);
        }
    }
    UNROLL for (int i = 0; i < NR; i++) y[r + i] = hsum(_mm256_add_ps(acc[i], bias_acc[i]));
}

ALWAYS_INLINE void rows_bits(float *y, int64_t ldy, const quant_act *a, int t0, int t1,
                             const weight *w, int64_t r0, int64_t r1, const int BITS) {
    const int groups = a->groups;
    if (t1 - t0 == 1) { /* decode: four rows at a time share the token's loads */
        float *yt = y + (int64_t)t0 * ldy;
        int64_t r = r0;
        for (; r + 4 <= r1; r += 4) tile_rows(yt, a, t0, w, r, BITS, 4);
        for (; r < r1; r++) tile_rows(yt, a, t0, w, r, BITS, 1);
        return;
    }
    int slice = K_SLICE / w->group_size;
    if (slice < 1) slice = 1;
    for (int t = t0; t < t1; t += NT_MAX) {
        int nt = t1 - t < NT_MAX ? t1 - t : NT_MAX;
        for (int g0 = 0; g0 < groups; g0 += slice) {
            int g1 = g0 + slice < groups ? g0 + slice : groups;
            bool first = g0 == 0;
            for (int64_t r = r0; r < r1; r++) {
                switch (nt) {
                case 4:
                    tile(y, ldy, a, t, w, r, g0, g1, first, BITS, 4);
                    break;
                case 3:
                    tile(y, ldy, a, t, w, r, g0, g1, first, BITS, 3);
                    break;
                case 2:
                    tile(y, ldy, a, t, w, r, g0, g1, first, BITS, 2);
                    break;
                default:
                    tile(y, ldy, a, t, w, r, g0, g1, first, BITS, 1);
                    break;
                }
            }
        }
    }
}

void QUANT_ROWS_FN(float *y, int64_t ldy, const quant_act *a, int t0, int t1, const weight *w,
                   int64_t r0, int64_t r1) {
#define WIDTH_ROWS(B) rows_bits(y, ldy, a, t0, t1, w, r0, r1, B)
    SWITCH_WIDTH(w->bits, WIDTH_ROWS);
#undef WIDTH_ROWS
}

#endif
