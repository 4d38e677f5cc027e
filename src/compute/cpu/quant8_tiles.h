/*
 * quant8_tiles.h — private to compute/cpu: the int8-activation kernels for MLX affine-quantized
 * weights (kernels.h, quant_act8), written once and compiled twice: for AVX2 (quant8_avx2.c)
 * and for AVX512-VNNI on 256-bit registers (quant8_avx512.c). Both are bit-identical to
 * quant8_portable.c: the integer sums are exact either way and the float steps are the same.
 *
 * The product of codes and activations: AVX2 has _mm256_maddubs_epi16 (unsigned codes times
 * signed activations, 32 multiply-adds into int16 pair sums) then madd_epi16 to widen; 8-bit
 * codes would overflow its pair sums, so there they enter as q - 128 (|q - 128| times the
 * activation with the sign of q - 128) and 128·Σx comes back from the block's code sum. VNNI's
 * vpdpbusd multiplies, sums four products and accumulates into int32 in one instruction, with no
 * overflow, so it takes 8-bit codes as they are.
 *
 * Rows go eight at a time, so one vector holds a value for each of eight rows and every float
 * step is the same whether a token is decoded alone or in a batch:
 * - decode (one token): each row's block sums reduce to one vector of eight rows with hadd;
 * - several tokens: the eight rows are first packed per block as 8 quads × 8 rows of codes (the
 *   layout of a 4-byte dot product broadcast over rows), then every token's block is eight
 *   products against its broadcast quads.
 *
 * The includer defines QUANT8_VNNI (0 or 1), QUANT8_ZMM (1: AVX-512, whose 512-bit registers
 * add the 4-bit decode of quad_sums4 and the 16-row prefill tiles; 0: AVX-VNNI, the same
 * vpdpbusd in its VEX encoding on 256-bit registers only) and QUANT8_ROWS_FN (the entry
 * point's name).
 */
#ifndef KILN_QUANT8_TILES_H
#define KILN_QUANT8_TILES_H

#include "compute/cpu/kernels.h"
#include "compute/cpu/simd_avx2.h"

#include <immintrin.h>
#include <string.h>

#define ROWS 8 /* rows per tile */
#if QUANT8_VNNI && !QUANT8_ZMM
#define dpbusd256 _mm256_dpbusd_avx_epi32 /* AVX-VNNI */
#else
#define dpbusd256 _mm256_dpbusd_epi32 /* AVX512-VNNI + VL */
#endif
/* 8-bit codes as q - 128 (AVX2's maddubs) or as they are (VNNI). */
#define SIGNED8(BITS) ((BITS) == 8 && !QUANT8_VNNI)
/* Decode prefetches the next tile of 8 rows, linearly, a group's share at a time: eight rows
 * read side by side are eight short streams the hardware prefetcher barely follows (1 KiB rows:
 * 7-8 GB/s with 2 threads on the dev VM against 12 GB/s for the same bytes read linearly, and
 * 12 with this prefetch). */
/* CALL(GS) with the group size (32, 64 or 128) as a constant, so a group's blocks unroll. */
#define BY_GROUP_SIZE(gs, CALL)                                                                    \
    do {                                                                                           \
        if ((gs) == 32)                                                                            \
            CALL(32);                                                                              \
        else if ((gs) == 64)                                                                       \
            CALL(64);                                                                              \
        else                                                                                       \
            CALL(128);                                                                             \
    } while (0)
/* Loops over rows, tokens and quads unrolled, so their accumulators live in registers. */
#define UNROLL _Pragma("GCC unroll 8")

/* ---- shared pieces ---- */

/* The 32 codes of a block (4·BITS bytes at p) as bytes in natural order (SIGNED8: q ^ 0x80,
 * that is q - 128 as a signed byte). */
ALWAYS_INLINE __m256i codes32(const uint8_t *p, const int BITS) {
    if (SIGNED8(BITS))
        return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)p), _mm256_set1_epi8(-128));
    if (BITS == 8) return _mm256_loadu_si256((const __m256i *)p);
    if (BITS == 4) {
        const __m128i m = _mm_set1_epi8(0x0f), v = _mm_loadu_si128((const __m128i *)p);
        __m128i lo = _mm_and_si128(v, m), hi = _mm_and_si128(_mm_srli_epi16(v, 4), m);
        return _mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi));
    }
    return _mm256_setr_epi64x((long long)spread8(p, 0, BITS), (long long)spread8(p, 1, BITS),
                              (long long)spread8(p, 2, BITS), (long long)spread8(p, 3, BITS));
}

#if !QUANT8_VNNI
/* Pairwise products of codes w (unsigned; SIGNED8: q - 128) and activations x, as int16 pair
 * sums. */
ALWAYS_INLINE __m256i dot_pairs(__m256i w, __m256i x, const int BITS) {
    if (SIGNED8(BITS)) return _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
    return _mm256_maddubs_epi16(w, x);
}

ALWAYS_INLINE __m256i widen(__m256i pairs) {
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}
#endif

/* acc + the sums of four products of codes w and activations x per 32-bit lane. */
ALWAYS_INLINE __m256i dot4(__m256i acc, __m256i w, __m256i x, const int BITS) {
#if QUANT8_VNNI
    (void)BITS;
    return dpbusd256(acc, w, x);
#else
    return _mm256_add_epi32(acc, widen(dot_pairs(w, x, BITS)));
#endif
}

/* The int32 sum of block b (code sum csum) for one token, 8-bit correction included. */
ALWAYS_INLINE __m256i add_offset(__m256i isum, int32_t csum, const int BITS) {
    return SIGNED8(BITS) ? _mm256_add_epi32(isum, _mm256_set1_epi32(128 * csum)) : isum;
}

/* acc = fma(isum, s·dx, acc) for eight rows: s·dx is off the chain from the integer sum, so a
 * token block waits on one float step after its sum instead of two. */
ALWAYS_INLINE __m256 scale_block(__m256 acc, __m256i isum, __m256 s, float dx) {
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(s, _mm256_set1_ps(dx)), acc);
}

/* Scales (or biases) of groups [g0, g0 + gn) for eight rows, as out[g - g0][row]. */
ALWAYS_INLINE void scales_8rows(float out[8][ROWS], const void *p, enum dtype dt,
                                const int64_t row[ROWS], int groups, int g0, int gn) {
    if (gn == 8) { /* 8 rows × 8 groups: load, convert, transpose */
        __m256 v[8];
        UNROLL for (int i = 0; i < ROWS; i++) v[i] = load8(p, row[i] * groups + g0, dt);
        transpose8(v);
        UNROLL for (int k = 0; k < 8; k++) _mm256_store_ps(out[k], v[k]);
        return;
    }
    for (int k = 0; k < gn; k++)
        for (int i = 0; i < ROWS; i++) out[k][i] = load1(p, row[i] * groups + g0 + k, dt);
}

/* Stores the valid rows of v at y[r..]. */
ALWAYS_INLINE void store_rows(float *y, __m256 v, int nr) {
    if (nr == ROWS) {
        _mm256_storeu_ps(y, v);
        return;
    }
    float tmp[ROWS];
    _mm256_storeu_ps(tmp, v);
    memcpy(y, tmp, sizeof(float) * (size_t)nr);
}

/* ---- decode: one token, eight rows ---- */

/* Row i's partial int32 sums of one block (natural-order activations xv; 4 bits: the
 * [evens | odds] order of a lone block). */
ALWAYS_INLINE __m256i row_block(const uint8_t *p, __m256i xv, const int BITS) {
    __m256i w;
    if (BITS == 4) {
        const __m128i m = _mm_set1_epi8(0x0f);
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        w = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
    } else {
        w = codes32(p, BITS);
    }
    return dot4(_mm256_setzero_si256(), w, xv, BITS);
}

/* Sum of block b for the eight rows at p + i·stride. hadds reduce the rows two by two as they
 * come, to [rows 0-3 | rows 0-3] and [rows 4-7 | rows 4-7] per 128-bit lane, so few sums are
 * live at once: with all eight held to the end GCC spilled them to the stack. */
ALWAYS_INLINE __m256i block_sums(const uint8_t *p, int64_t stride, const int8_t *x,
                                 const int BITS) {
    const __m256i xv = _mm256_loadu_si256((const __m256i *)x);
    __m256i h[4];
    UNROLL for (int i = 0; i < ROWS; i += 2) h[i / 2] = _mm256_hadd_epi32(
        row_block(p + i * stride, xv, BITS), row_block(p + (i + 1) * stride, xv, BITS));
    const __m256i lo = _mm256_hadd_epi32(h[0], h[1]), hi = _mm256_hadd_epi32(h[2], h[3]);
    return _mm256_add_epi32(_mm256_permute2x128_si256(lo, hi, 0x20),
                            _mm256_permute2x128_si256(lo, hi, 0x31));
}

/* Row i's partial sums of two blocks from one 32-byte load (x in pair order: xe, xo): int32
 * lane sums with VNNI; AVX2, int16 pair sums (each |sum| <= 2 · 2 · 15 · 128 = 7680). */
ALWAYS_INLINE __m256i row_pair4(const uint8_t *p, __m256i xe, __m256i xo) {
    const __m256i m = _mm256_set1_epi8(0x0f);
    __m256i v = _mm256_loadu_si256((const __m256i *)p);
    __m256i ev = _mm256_and_si256(v, m), od = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);
#if QUANT8_VNNI
    return dpbusd256(dpbusd256(_mm256_setzero_si256(), ev, xe), od, xo);
#else
    return _mm256_add_epi16(_mm256_maddubs_epi16(ev, xe), _mm256_maddubs_epi16(od, xo));
#endif
}

/* Rows i..i+3's sums as [r0 r1 r2 r3] per 128-bit lane (block). The rows are reduced as they
 * come, so few sums are live at once (with all eight held to the end GCC spilled them). AVX2
 * adds the int16 pair sums two levels further in int16 (|sum| <= 4 · 7680, no overflow) before
 * widening once: 3 hadds and a madd for four rows instead of 4 madds and 3 hadds. */
ALWAYS_INLINE __m256i four_rows4(const uint8_t *p, int64_t stride, __m256i xe, __m256i xo) {
    __m256i r0 = row_pair4(p, xe, xo), r1 = row_pair4(p + stride, xe, xo);
#if QUANT8_VNNI
    __m256i h01 = _mm256_hadd_epi32(r0, r1);
    __m256i r2 = row_pair4(p + 2 * stride, xe, xo), r3 = row_pair4(p + 3 * stride, xe, xo);
    return _mm256_hadd_epi32(h01, _mm256_hadd_epi32(r2, r3));
#else
    __m256i h01 = _mm256_hadd_epi16(r0, r1);
    __m256i r2 = row_pair4(p + 2 * stride, xe, xo), r3 = row_pair4(p + 3 * stride, xe, xo);
    return widen(_mm256_hadd_epi16(h01, _mm256_hadd_epi16(r2, r3)));
#endif
}

/* 4 bits: two blocks from one 32-byte load per row (x in pair order). */
ALWAYS_INLINE void pair_sums4(const uint8_t *p, int64_t stride, const int8_t *x, __m256i *i0,
                              __m256i *i1) {
    const __m256i xe = _mm256_loadu_si256((const __m256i *)x);
    const __m256i xo = _mm256_loadu_si256((const __m256i *)(x + 32));
    const __m256i lo = four_rows4(p, stride, xe, xo),
                  hi = four_rows4(p + 4 * stride, stride, xe, xo);
    *i0 = _mm256_permute2x128_si256(lo, hi, 0x20);
    *i1 = _mm256_permute2x128_si256(lo, hi, 0x31);
}

#if QUANT8_ZMM
/* 4 bits on 512-bit registers: four blocks (two pairs) of eight rows from one 64-byte load per
 * row, out[j] = block j's sums for the eight rows. The lane sums reduce with unpack + add
 * (AVX-512 has no hadd): first within each row pair, then into [r0 r1 r2 r3] per block. */
ALWAYS_INLINE void quad_sums4(const uint8_t *p, int64_t stride, const int8_t *x, __m256i out[4]) {
    const __m512i m = _mm512_set1_epi8(0x0f);
    const __m512i xe =
        _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)x)),
                           _mm256_loadu_si256((const __m256i *)(x + 64)), 1);
    const __m512i xo =
        _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(x + 32))),
                           _mm256_loadu_si256((const __m256i *)(x + 96)), 1);
    __m512i s[ROWS], t[ROWS / 2];
    UNROLL for (int i = 0; i < ROWS; i++) {
        __m512i v = _mm512_loadu_si512((const void *)(p + i * stride));
        __m512i ev = _mm512_and_si512(v, m), od = _mm512_and_si512(_mm512_srli_epi16(v, 4), m);
        s[i] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ev, xe), od, xo);
    }
    UNROLL for (int i = 0; i < ROWS; i += 2) t[i / 2] = _mm512_add_epi32(
        _mm512_unpacklo_epi32(s[i], s[i + 1]), _mm512_unpackhi_epi32(s[i], s[i + 1]));
    const __m512i r03 =
        _mm512_add_epi32(_mm512_unpacklo_epi64(t[0], t[1]), _mm512_unpackhi_epi64(t[0], t[1]));
    const __m512i r47 =
        _mm512_add_epi32(_mm512_unpacklo_epi64(t[2], t[3]), _mm512_unpackhi_epi64(t[2], t[3]));
    /* 128-bit lane j of r03/r47 holds block j's rows 0-3/4-7 */
    const __m512i ab = _mm512_permutex2var_epi32(
        r03, _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23), r47);
    const __m512i cd = _mm512_permutex2var_epi32(
        r03, _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31), r47);
    out[0] = _mm512_castsi512_si256(ab);
    out[1] = _mm512_extracti64x4_epi64(ab, 1);
    out[2] = _mm512_castsi512_si256(cd);
    out[3] = _mm512_extracti64x4_epi64(cd, 1);
}
#endif

/* Rows [r, r + 8) for one token; GS, the group size, fixed so a group's blocks unroll. */
ALWAYS_INLINE void decode_tile(float *y, const quant_act8 *a, const weight *w, int64_t r,
                               const int BITS, const int GS) {
    const int groups = a->groups;
    const int64_t stride = w->cols * BITS / 8;
    const uint8_t *base = (const uint8_t *)w->data + r * stride;
    const int8_t *x = BITS == 4 ? a->q4 : a->q;
    int64_t ri[ROWS];
    UNROLL for (int i = 0; i < ROWS; i++) ri[i] = r + i;
    float s[8][ROWS] __attribute__((aligned(32))), bs[8][ROWS] __attribute__((aligned(32)));
    __m256 acc = _mm256_setzero_ps();
    for (int g0 = 0; g0 < groups; g0 += 8) {
        const int gn = groups - g0 < 8 ? groups - g0 : 8;
        scales_8rows(s, w->scales, w->scale_dtype, ri, groups, g0, gn);
        scales_8rows(bs, w->biases, w->scale_dtype, ri, groups, g0, gn);
        for (int k = 0; k < gn; k++) {
            const int g = g0 + k, b0 = g * (GS / QUANT8_BLOCK);
            const uint8_t *p = base + (int64_t)g * GS * BITS / 8;
            const __m256 sv = _mm256_load_ps(s[k]);
            const char *ahead = (const char *)base + ROWS * stride + (int64_t)g * GS * BITS;
            UNROLL for (int j = 0; j < (GS * BITS + 63) / 64; j++)
                _mm_prefetch(ahead + 64 * j, _MM_HINT_T0);
#if QUANT8_ZMM
            /* 4 bits: 128 values a row per load (group 128: one group; 64: this and the next) */
            if (BITS == 4 && GS >= 64 && (GS == 128 || k + 1 < gn)) {
                __m256i q[4];
                quad_sums4(p, stride, x + (int64_t)b0 * 32, q);
                acc = scale_block(acc, q[0], sv, a->dx[b0]);
                acc = scale_block(acc, q[1], sv, a->dx[b0 + 1]);
                if (GS == 64) { /* the next group: its prefetch, scale and bias */
                    acc = _mm256_fmadd_ps(_mm256_load_ps(bs[k]), _mm256_set1_ps(a->xs[g]), acc);
                    UNROLL for (int j = 0; j < (GS * BITS + 63) / 64; j++)
                        _mm_prefetch(ahead + GS * BITS + 64 * j, _MM_HINT_T0);
                    k++;
                }
                const __m256 sv2 = _mm256_load_ps(s[k]);
                acc = scale_block(acc, q[2], sv2, a->dx[b0 + 2]);
                acc = scale_block(acc, q[3], sv2, a->dx[b0 + 3]);
                acc = _mm256_fmadd_ps(_mm256_load_ps(bs[k]), _mm256_set1_ps(a->xs[g0 + k]), acc);
                continue;
            }
#endif
            if (BITS == 4 && GS >= 64) {
                UNROLL for (int j = 0; j < GS / 64; j++) {
                    __m256i i0, i1;
                    pair_sums4(p + j * 32, stride, x + (int64_t)(b0 + 2 * j) * 32, &i0, &i1);
                    acc = scale_block(acc, i0, sv, a->dx[b0 + 2 * j]);
                    acc = scale_block(acc, i1, sv, a->dx[b0 + 2 * j + 1]);
                }
            } else {
                UNROLL for (int j = 0; j < GS / 32; j++) {
                    const int b = b0 + j;
                    __m256i isum = block_sums(p + j * 4 * BITS, stride, x + (int64_t)b * 32, BITS);
                    acc = scale_block(acc, add_offset(isum, a->csum[b], BITS), sv, a->dx[b]);
                }
            }
            acc = _mm256_fmadd_ps(_mm256_load_ps(bs[k]), _mm256_set1_ps(a->xs[g]), acc);
        }
    }
    _mm256_storeu_ps(y + r, acc);
}

ALWAYS_INLINE void decode_rows(float *y, const quant_act8 *a, const weight *w, int64_t r0,
                               int64_t r1, const int BITS) {
    int64_t r = r0;
#define DECODE_TILE(GS) decode_tile(y, a, w, r, BITS, GS)
    for (; r + ROWS <= r1; r += ROWS) BY_GROUP_SIZE(w->group_size, DECODE_TILE);
#undef DECODE_TILE
    /* The last rows (shapes not a multiple of 8): the reference computes the same values. */
    if (r < r1) quant8_rows_portable(y, w->rows, a, w, r, r1);
}

/* ---- several tokens: packed rows ---- */

/* Bytes of a packed block: 8 quads × 8 rows of codes (SIGNED8: |q - 128| and then q - 128). */
#define PACKED_BLOCK(BITS) (SIGNED8(BITS) ? 512 : 256)

/* Packs rows [r, r + nr) (nr <= 8; missing rows get code 0 and scale 0) as, per block, quad k
 * of every row in one vector (an 8 × 8 transpose of int32), then per group the eight rows'
 * scales and biases. */
ALWAYS_INLINE void pack_rows(uint8_t *pack, const weight *w, int64_t r, int nr, int blocks,
                             const int BITS) {
    const int groups = (int)(w->cols / w->group_size);
    const int64_t row_bytes = w->cols * BITS / 8;
    int64_t ri[ROWS];
    UNROLL for (int i = 0; i < ROWS; i++) ri[i] = r + (i < nr ? i : nr - 1);
    for (int b = 0; b < blocks; b++) {
        __m256 v[ROWS]; /* row i's 8 quads, transposed into quad k's 8 rows */
        UNROLL for (int i = 0; i < ROWS; i++) v[i] = _mm256_castsi256_ps(
            i < nr ? codes32((const uint8_t *)w->data + ri[i] * row_bytes + b * 4 * BITS, BITS)
                   : _mm256_setzero_si256());
        transpose8(v);
        __m256i *out = (__m256i *)(pack + (int64_t)b * PACKED_BLOCK(BITS));
        UNROLL for (int k = 0; k < 8; k++) {
            const __m256i quads = _mm256_castps_si256(v[k]);
            if (SIGNED8(BITS)) {
                _mm256_store_si256(out + k, _mm256_abs_epi8(quads));
                _mm256_store_si256(out + 8 + k, quads);
            } else {
                _mm256_store_si256(out + k, quads);
            }
        }
    }
    float *sc = (void *)(pack + (int64_t)blocks * PACKED_BLOCK(BITS));
    for (int g0 = 0; g0 < groups; g0 += 8) {
        const int gn = groups - g0 < 8 ? groups - g0 : 8;
        float s[8][ROWS] __attribute__((aligned(32))), bs[8][ROWS] __attribute__((aligned(32)));
        scales_8rows(s, w->scales, w->scale_dtype, ri, groups, g0, gn);
        scales_8rows(bs, w->biases, w->scale_dtype, ri, groups, g0, gn);
        for (int k = 0; k < gn; k++)
            for (int i = 0; i < ROWS; i++) {
                sc[(g0 + k) * 16 + i] = i < nr ? s[k][i] : 0;
                sc[(g0 + k) * 16 + 8 + i] = i < nr ? bs[k][i] : 0;
            }
    }
}

/* The four activations at x, broadcast to every 32-bit lane. Through the float broadcast on
 * purpose: on Zen 3 vbroadcastss from memory is a load alone, while vpbroadcastd also takes a
 * vector pipe (AVX2 prefill, one thread: 69-70 against 64 GMAC/s, 2026-11-26). */
ALWAYS_INLINE __m256i quad_at(const int8_t *x) {
    return _mm256_castps_si256(_mm256_broadcast_ss((const float *)(const void *)x));
}

/* Block b's int32 sum for one token (x: its 32 codes) against the packed quads w. AVX2: sums of
 * pairs stay in int16 while they cannot overflow: 8 quads at up to 4 bits, 4 at 5, 2 at 6, 1 at
 * 8 bits (whose w holds |q - 128| and ws q - 128 for the signs). */
ALWAYS_INLINE __m256i token_block(const __m256i w[8], const __m256i ws[8], const int8_t *x,
                                  const int BITS) {
    __m256i isum = _mm256_setzero_si256();
#if QUANT8_VNNI
    (void)ws;
    (void)BITS;
    UNROLL for (int k = 0; k < 8; k++) {
        isum = dpbusd256(isum, w[k], quad_at(x + 4 * k));
    }
#else
    const int run = BITS <= 4 ? 8 : BITS == 5 ? 4 : BITS == 6 ? 2 : 1;
    UNROLL for (int k0 = 0; k0 < 8; k0 += run) {
        __m256i p = _mm256_setzero_si256();
        UNROLL for (int k = k0; k < k0 + run; k++) {
            __m256i xv = quad_at(x + 4 * k);
            if (BITS == 8) xv = _mm256_sign_epi8(xv, ws[k]);
            p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w[k], xv));
        }
        isum = _mm256_add_epi32(isum, widen(p));
    }
#endif
    return isum;
}

/* Where a tile's blocks come from: rows packed per call (pack_rows: quads as bytes, f32 scales
 * and biases after the blocks) or a tile of an interleaved weight (compute.h: nibbles at 4
 * bits, its own scale dtype, a group's scales after its blocks). */
typedef struct tile_source {
    const uint8_t *p;
    bool interleaved;
    enum dtype scale_dtype;
    int64_t group_bytes; /* interleaved */
    const float *sc;     /* packed: [group][scales 8 | biases 8] */
} tile_source;

ALWAYS_INLINE tile_source packed_source(const uint8_t *pack, int blocks, const int BITS) {
    return (tile_source){.p = pack,
                         .sc = (const void *)(pack + (int64_t)blocks * PACKED_BLOCK(BITS))};
}

ALWAYS_INLINE tile_source interleaved_source(const weight *w, int64_t r) {
    const int64_t group_bytes = interleaved_group_bytes(w);
    const int64_t groups = w->cols / w->group_size;
    return (tile_source){.p = (const uint8_t *)w->data + r / ROWS * groups * group_bytes,
                         .interleaved = true,
                         .scale_dtype = w->scale_dtype,
                         .group_bytes = group_bytes};
}

/* Block k of group g as eight vectors of quads, lane i = row i: w the codes (SIGNED8:
 * |q - 128|), ws the vectors whose signs the activations take (SIGNED8: q - 128). */
ALWAYS_INLINE void source_block(const tile_source *s, int g, int k, int bpg, __m256i w[8],
                                __m256i ws[8], const int BITS) {
    if (!s->interleaved) {
        const __m256i *pb = (const __m256i *)(s->p + (int64_t)(g * bpg + k) * PACKED_BLOCK(BITS));
        UNROLL for (int j = 0; j < 8; j++) {
            w[j] = _mm256_load_si256(pb + j);
            ws[j] = SIGNED8(BITS) ? _mm256_load_si256(pb + 8 + j) : w[j];
        }
        return;
    }
    const __m256i *pb = (const __m256i *)(s->p + g * s->group_bytes + k * 32 * BITS);
    if (BITS == 4) {
        const __m256i m = _mm256_set1_epi8(0x0f);
        UNROLL for (int j = 0; j < 4; j++) {
            const __m256i v = _mm256_loadu_si256(pb + j);
            ws[2 * j] = w[2 * j] = _mm256_and_si256(v, m);
            ws[2 * j + 1] = w[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);
        }
        return;
    }
    UNROLL for (int j = 0; j < 8; j++) {
        const __m256i v = _mm256_loadu_si256(pb + j);
        ws[j] = SIGNED8(BITS) ? _mm256_xor_si256(v, _mm256_set1_epi8(-128)) : v;
        w[j] = SIGNED8(BITS) ? _mm256_abs_epi8(ws[j]) : v;
    }
}

/* The eight rows' scales (bias: 1) of group g. */
ALWAYS_INLINE __m256 source_scales(const tile_source *s, int g, int bias) {
    if (!s->interleaved) return _mm256_load_ps(s->sc + g * 16 + 8 * bias);
    const int64_t at = (g + 1) * s->group_bytes - 2 * ROWS * (int64_t)sizeof(uint16_t);
    return load8(s->p + at, ROWS * bias, s->scale_dtype);
}

/* All n tokens against the eight rows of src (nr of them valid): a block's eight quads of codes
 * are loaded once into registers and every token's block (block-major activations: one
 * sequential run) goes against them; the tokens' eight-row sums wait in acc[n][8] (L1). */
ALWAYS_INLINE void run_tokens(float *y, int64_t ldy, const quant_act8 *a, const tile_source *src,
                              float *acc, int nr, int bpg, const int BITS) {
    const int n = a->n;
    for (int t = 0; t < n; t++) _mm256_store_ps(acc + 8 * t, _mm256_setzero_ps());
    for (int g = 0; g < a->groups; g++) {
        const __m256 sv = source_scales(src, g, 0);
        for (int k = 0; k < bpg; k++) {
            const int b = g * bpg + k;
            __m256i w[8], ws[8];
            source_block(src, g, k, bpg, w, ws, BITS);
            const int8_t *x = a->q + act8_at(a, 0, b) * QUANT8_BLOCK;
            const float *dx = a->dx + act8_at(a, 0, b);
            const int32_t *cs = a->csum + act8_at(a, 0, b);
            for (int t = 0; t < n; t++) {
                __m256i isum = token_block(w, ws, x + (int64_t)t * QUANT8_BLOCK, BITS);
                _mm256_store_ps(acc + 8 * t, scale_block(_mm256_load_ps(acc + 8 * t),
                                                         add_offset(isum, cs[t], BITS), sv, dx[t]));
            }
        }
        const __m256 bv = source_scales(src, g, 1);
        const float *xs = a->xs + act8_at(a, 0, g);
        for (int t = 0; t < n; t++)
            _mm256_store_ps(acc + 8 * t, _mm256_fmadd_ps(bv, _mm256_set1_ps(xs[t]),
                                                         _mm256_load_ps(acc + 8 * t)));
    }
    for (int t = 0; t < n; t++) store_rows(y + (int64_t)t * ldy, _mm256_load_ps(acc + 8 * t), nr);
}

/* ---- interleaved weights (compute.h) ---- */

/* How far ahead of its reads decode prefetches the tile stream: a little over the memory
 * latency's worth of bytes (dev VM, 4-bit: 1-2 KiB beat 4 KiB and more). */
#define INTERLEAVED_PREFETCH 2048

/* Rows [r, r + 8) of interleaved w for one token: run_tokens' steps, the sums in a register. */
ALWAYS_INLINE void interleaved_decode_tile(float *y, const quant_act8 *a, const weight *w,
                                           int64_t r, const int BITS, const int GS) {
    const tile_source src = interleaved_source(w, r);
    const int bpg = GS / QUANT8_BLOCK;
    __m256 acc = _mm256_setzero_ps();
    for (int g = 0; g < a->groups; g++) {
        const char *ahead = (const char *)src.p + g * src.group_bytes + INTERLEAVED_PREFETCH;
        UNROLL for (int j = 0; j < (INTERLEAVED_GROUP_BYTES(GS, BITS) + 63) / 64; j++)
            _mm_prefetch(ahead + 64 * j, _MM_HINT_T0);
        const __m256 sv = source_scales(&src, g, 0);
        UNROLL for (int k = 0; k < bpg; k++) {
            const int b = g * bpg + k;
            __m256i wq[8], ws[8];
            source_block(&src, g, k, bpg, wq, ws, BITS);
            const __m256i isum = token_block(wq, ws, a->q + (int64_t)b * QUANT8_BLOCK, BITS);
            acc = scale_block(acc, add_offset(isum, a->csum[b], BITS), sv, a->dx[b]);
        }
        acc = _mm256_fmadd_ps(source_scales(&src, g, 1), _mm256_set1_ps(a->xs[g]), acc);
    }
    _mm256_storeu_ps(y + r, acc);
}

/* Rows [r0, r1) (whole tiles) of interleaved w for every token. */
ALWAYS_INLINE void interleaved_rows(float *y, int64_t ldy, const quant_act8 *a, const weight *w,
                                    int64_t r0, int64_t r1, const int BITS) {
    if (a->n == 1) {
#define DECODE_TILE(GS) interleaved_decode_tile(y, a, w, r, BITS, GS)
        for (int64_t r = r0; r < r1; r += ROWS) BY_GROUP_SIZE(w->group_size, DECODE_TILE);
#undef DECODE_TILE
        return;
    }
    float *acc = thread_scratch(SCRATCH_PACK, (size_t)a->n * ROWS * sizeof(float));
    if (!acc) { /* out of memory for the tokens' sums: the reference computes the same */
        quant8_rows_portable(y, ldy, a, w, r0, r1);
        return;
    }
    for (int64_t r = r0; r < r1; r += ROWS) {
        const tile_source src = interleaved_source(w, r);
        run_tokens(y + r, ldy, a, &src, acc, ROWS, w->group_size / QUANT8_BLOCK, BITS);
    }
}

ALWAYS_INLINE void packed_rows(float *y, int64_t ldy, const quant_act8 *a, const weight *w,
                               int64_t r0, int64_t r1, const int BITS) {
    const int bpg = w->group_size / QUANT8_BLOCK;
    const int64_t pack_bytes = (int64_t)a->blocks * PACKED_BLOCK(BITS) + (int64_t)a->groups * 64;
    uint8_t *pack = thread_scratch(SCRATCH_PACK, (size_t)(pack_bytes + (int64_t)a->n * 32));
    if (!pack) { /* out of memory for one panel: the reference computes the same */
        quant8_rows_portable(y, ldy, a, w, r0, r1);
        return;
    }
    float *acc = (void *)(pack + pack_bytes);
    for (int64_t r = r0; r < r1; r += ROWS) {
        const int nr = r1 - r < ROWS ? (int)(r1 - r) : ROWS;
        pack_rows(pack, w, r, nr, a->blocks, BITS);
        const tile_source src = packed_source(pack, a->blocks, BITS);
        run_tokens(y + r, ldy, a, &src, acc, nr, bpg, BITS);
    }
}

#if QUANT8_ZMM
/* ---- several tokens, 512-bit: sixteen rows a tile ---- */

/* run_tokens on zmm registers: two 8-row packs side by side (rows r..r+7 in the low half of
 * each vector, r+8..r+15 in the high half), each lane's float steps exactly run_tokens'. */
ALWAYS_INLINE void run_tokens16(float *y, int64_t ldy, const quant_act8 *a, const uint8_t *pa,
                                const uint8_t *pb, float *acc, int bpg, const int BITS) {
    const int n = a->n;
    const float *sa = (const void *)(pa + (int64_t)a->blocks * PACKED_BLOCK(BITS));
    const float *sb = (const void *)(pb + (int64_t)a->blocks * PACKED_BLOCK(BITS));
    for (int t = 0; t < n; t++) _mm512_store_ps(acc + 16 * t, _mm512_setzero_ps());
    for (int g = 0; g < a->groups; g++) {
        const __m512 sv = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_load_ps(sa + g * 16)),
                                             _mm256_load_ps(sb + g * 16), 1);
        for (int b = g * bpg; b < (g + 1) * bpg; b++) {
            __m512i w[8];
            UNROLL for (int k = 0; k < 8; k++) w[k] = _mm512_inserti64x4(
                _mm512_castsi256_si512(
                    _mm256_load_si256((const __m256i *)(pa + (int64_t)b * PACKED_BLOCK(BITS)) + k)),
                _mm256_load_si256((const __m256i *)(pb + (int64_t)b * PACKED_BLOCK(BITS)) + k), 1);
            const int8_t *x = a->q + act8_at(a, 0, b) * QUANT8_BLOCK;
            const float *dx = a->dx + act8_at(a, 0, b);
            for (int t = 0; t < n; t++) {
                __m512i isum = _mm512_setzero_si512();
                UNROLL for (int k = 0; k < 8; k++) {
                    int32_t quad;
                    memcpy(&quad, x + (int64_t)t * QUANT8_BLOCK + 4 * k, 4);
                    isum = _mm512_dpbusd_epi32(isum, w[k], _mm512_set1_epi32(quad));
                }
                __m512 sdx = _mm512_mul_ps(sv, _mm512_set1_ps(dx[t]));
                _mm512_store_ps(acc + 16 * t, _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), sdx,
                                                              _mm512_load_ps(acc + 16 * t)));
            }
        }
        const __m512 bv =
            _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_load_ps(sa + g * 16 + 8)),
                               _mm256_load_ps(sb + g * 16 + 8), 1);
        const float *xs = a->xs + act8_at(a, 0, g);
        for (int t = 0; t < n; t++)
            _mm512_store_ps(acc + 16 * t, _mm512_fmadd_ps(bv, _mm512_set1_ps(xs[t]),
                                                          _mm512_load_ps(acc + 16 * t)));
    }
    for (int t = 0; t < n; t++)
        _mm512_storeu_ps(y + (int64_t)t * ldy, _mm512_load_ps(acc + 16 * t));
}

/* Whole tiles of 16 rows through run_tokens16, the rest through packed_rows. */
ALWAYS_INLINE void packed_rows16(float *y, int64_t ldy, const quant_act8 *a, const weight *w,
                                 int64_t r0, int64_t r1, const int BITS) {
    const int bpg = w->group_size / QUANT8_BLOCK;
    const int64_t pack_bytes = (int64_t)a->blocks * PACKED_BLOCK(BITS) + (int64_t)a->groups * 64;
    uint8_t *pack = thread_scratch(SCRATCH_PACK, (size_t)(2 * pack_bytes + (int64_t)a->n * 64));
    if (!pack) {
        quant8_rows_portable(y, ldy, a, w, r0, r1);
        return;
    }
    float *acc = (void *)(pack + 2 * pack_bytes);
    int64_t r = r0;
    for (; r + 16 <= r1; r += 16) {
        pack_rows(pack, w, r, ROWS, a->blocks, BITS);
        pack_rows(pack + pack_bytes, w, r + ROWS, ROWS, a->blocks, BITS);
        run_tokens16(y + r, ldy, a, pack, pack + pack_bytes, acc, bpg, BITS);
    }
    if (r < r1) packed_rows(y, ldy, a, w, r, r1, BITS);
}
#endif

ALWAYS_INLINE void rows_bits(float *y, int64_t ldy, const quant_act8 *a, const weight *w,
                             int64_t r0, int64_t r1, const int BITS) {
    if (w->interleaved) {
        interleaved_rows(y, ldy, a, w, r0, r1, BITS);
        return;
    }
    if (a->n == 1 && (BITS != 4 || a->q4)) {
        decode_rows(y, a, w, r0, r1, BITS);
        return;
    }
#if QUANT8_ZMM
    packed_rows16(y, ldy, a, w, r0, r1, BITS);
#else
    packed_rows(y, ldy, a, w, r0, r1, BITS);
#endif
}

void QUANT8_ROWS_FN(float *y, int64_t ldy, const quant_act8 *a, const weight *w, int64_t r0,
                    int64_t r1) {
#define WIDTH_ROWS(B) rows_bits(y, ldy, a, w, r0, r1, B)
    SWITCH_WIDTH(w->bits, WIDTH_ROWS);
#undef WIDTH_ROWS
}

#endif
