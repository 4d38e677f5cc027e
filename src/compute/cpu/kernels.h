/*
 * kernels.h — private to compute/cpu: the table of per-instruction-set kernels. dispatch.c
 * picks one table at first use from the CPU's features; portable.c is the reference every
 * variant must agree with.
 */
#ifndef KILN_CPU_KERNELS_H
#define KILN_CPU_KERNELS_H

#include "compute/compute.h"

/* Activations of one quantized matmul, quantized once per call (quant_matmul.c): per token,
 * cols int16 codes; per weight group g a scale dx (x ≈ dx·q) stored broadcast to 8 floats for
 * the SIMD kernels, and xs = the sum of the group's dequantized values (for the biases:
 * dot(w, x) = Σ_g s_g·dx_g·Σ q_w·q_x + b_g·xs_g). int16 rather than int8: int8 activations
 * alone move the fixtures' logits by 1e-2 relative, over the 5e-3 tolerance. */
typedef struct quant_act {
    int64_t cols;
    int group_size, groups;
    int bits;   /* of the weight: 4 selects the even/odd code layout (quant_portable.c) */
    int16_t *q; /* [n][cols] */
    float *dxv; /* [n][groups][8] */
    float *dx;  /* [n][groups]: the same scales, one per group */
    float *xs;  /* [n][groups] */
} quant_act;
#define QUANT_ACT_MAX 32767

/* int8 activations (the default, compute_set_activation_bits): cols int8 codes rint(x·127/max)
 * a token per block of QUANT8_BLOCK values, stored block-major (block b of every token, then
 * block b + 1: act8_at), so a kernel that holds one block of weights in registers runs through
 * all tokens sequentially; for one token that is natural order. For one token of a 4-bit weight
 * also in the decode order q4 (act8_pos4), which lets the AVX2 kernel split a byte's two nibbles
 * without interleaving them. Per block a scale dx (x ≈ dx·q) and the codes' sum csum; per
 * weight group xs = Σ_b dx_b·csum_b (for the biases); both block-major too. A row's
 * value is, per group g in order: for each block b of g in order acc = fma(isum_b, s_g·dx_b,
 * acc), then acc = fma(bias_g, xs_g, acc) — every variant computes exactly this, so results
 * do not depend on the instruction set, the batch or the tile a token falls in. */
#define QUANT8_BLOCK 32
/* A block whose largest |x| is below QUANT8_TINY gets zero codes and dx 0 (127/max would
 * overflow); one holding an Inf or NaN gets zero codes and dx NaN, so every row it meets comes
 * out NaN rather than a number that depends on the instruction set. */
#define QUANT8_TINY 0x1p-100f
typedef struct quant_act8 {
    int64_t cols;
    int n, group_size, groups, blocks;
    int8_t *q;     /* [blocks][n][32] */
    int8_t *q4;    /* [cols], token 0 in decode order; NULL unless a 4-bit weight and n == 1 */
    float *dx;     /* [blocks][n] */
    int32_t *csum; /* [blocks][n] */
    float *xs;     /* [groups][n] */
} quant_act8;
/* Index of token t's entry for block (or group) b in the block-major arrays. */
static inline int64_t act8_at(const quant_act8 *a, int t, int b) {
    return (int64_t)b * a->n + t;
}

/* Where row i (< WEIGHT_PANEL) of a panel sits within a column: BF16 interleaves the two
 * halves so that a 32-bit lane holds rows j and j + 8 (compute.h). */
static inline int panel_slot(enum dtype dt, int i) {
    return dt == DT_BF16 ? (i & 7) * 2 + (i >> 3) : i;
}
/* Calls ROWS(y, ldy, x, n, w, r0, r1, dtype) with w's dtype as a constant, so that each
 * dense dtype gets its own inlined kernel. */
#define DENSE_BY_DTYPE(ROWS, y, ldy, x, n, w, r0, r1)                                              \
    do {                                                                                           \
        if ((w)->dtype == DT_BF16)                                                                 \
            ROWS(y, ldy, x, n, w, r0, r1, DT_BF16);                                                \
        else if ((w)->dtype == DT_F16)                                                             \
            ROWS(y, ldy, x, n, w, r0, r1, DT_F16);                                                 \
        else                                                                                       \
            ROWS(y, ldy, x, n, w, r0, r1, DT_F32);                                                 \
    } while (0)
/* Offset, in elements, of (r, 0) of a weight in panel order; (r, k) is k * WEIGHT_PANEL on. */
static inline int64_t panel_index(const weight *w, int64_t r) {
    return r / WEIGHT_PANEL * w->cols * WEIGHT_PANEL +
           panel_slot(w->dtype, (int)(r % WEIGHT_PANEL));
}

typedef struct cpu_kernels {
    const char *name;
    /* y[t * ldy + r] = dot(row r of dense weight w, x + t * w->cols) for t < n, r in [r0, r1);
     * w in panel order, r0 a multiple of WEIGHT_PANEL; the sum is one fma chain over k in order
     * in every variant (compute.h), so results are bit-identical. */
    void (*dense_rows)(float *y, int64_t ldy, const float *x, int n, const weight *w, int64_t r0,
                       int64_t r1);
    /* y[t * ldy + r] = dot(row r of MLX affine-quantized w, token t of a) for t in [t0, t1),
     * r in [r0, r1): integer dot products of the codes with the int16 activations per group. */
    void (*quant_rows)(float *y, int64_t ldy, const quant_act *a, int t0, int t1, const weight *w,
                       int64_t r0, int64_t r1);
    /* Quantizes tokens [t0, t1) of x into a (every variant gives identical codes and scales). */
    void (*quantize_act)(quant_act *a, const float *x, int t0, int t1);
    /* The same rows with int8 activations: y[t * ldy + r] for t < a->n, r in [r0, r1), r0 a
     * multiple of 8; identical results for every n and row range. a->q4 is set only when a->n
     * is 1. */
    void (*quant8_rows)(float *y, int64_t ldy, const quant_act8 *a, const weight *w, int64_t r0,
                        int64_t r1);
    /* Quantizes tokens [t0, t1) of x into a (and q4 when set); identical in every variant. */
    void (*quantize_act8)(quant_act8 *a, const float *x, int t0, int t1);
    /* Panels [p0, p1) of row-major dense w into dst, laid out as weight_to_panels does. */
    void (*pack_panels)(uint8_t *dst, const weight *w, int64_t p0, int64_t p1);
    float (*dot)(const float *a, const float *b, int n);
    /* One online-softmax step of attention (see op_attend in compute.h). */
    void (*attend)(float *acc, float *max, float *sum, const float *q, const float *k,
                   const float *v, int run, int hd, float scale);
    void (*axpy)(float *y, float a, const float *x, int n);
    void (*silu_mul)(float *a, const float *b, int n); /* a = silu(a) · b */
} cpu_kernels;

extern const cpu_kernels cpu_kernels_portable;
extern const cpu_kernels cpu_kernels_avx2;
const cpu_kernels *cpu_kernels_get(void);

/* Portable attention step (the reference for SIMD variants). */
void attend_portable(float *acc, float *max, float *sum, const float *q, const float *k,
                     const float *v, int run, int hd, float scale);
void attend_avx2(float *acc, float *max, float *sum, const float *q, const float *k, const float *v,
                 int run, int hd, float scale);
void pack_panels_portable(uint8_t *dst, const weight *w, int64_t p0, int64_t p1);
/* The calling thread's scratch buffer for `use`, of at least `bytes` bytes, 64-byte aligned
 * (scratch.c; grown rarely, freed with the thread; NULL + error when out of memory). Its
 * contents last until the thread asks for more of the same use. */
enum scratch_use {
    SCRATCH_ACTIVATIONS, /* a quantized matmul's activations, on its calling thread */
    SCRATCH_PACK,        /* rows a quantized prefill task packs */
    SCRATCH_USES
};
void *thread_scratch(enum scratch_use use, size_t bytes);
/* AVX-512 dense rows (dense_avx512.c): 32-row × 12-token tiles for prefill. */
void dense_rows_avx512(float *y, int64_t ldy, const float *x, int n, const weight *w, int64_t r0,
                       int64_t r1);
void silu_mul_portable(float *a, const float *b, int n);
void silu_mul_avx2(float *a, const float *b, int n);
/* Float reference for quantized rows: dequantizes each row and dots it with float x (tests). */
void quant_rows_reference(float *y, int64_t ldy, const float *x, int n, const weight *w, int64_t r0,
                          int64_t r1);
/* The portable integer kernels (quant_portable.c), also used by variants for odd cases. */
void quant_rows_portable(float *y, int64_t ldy, const quant_act *a, int t0, int t1, const weight *w,
                         int64_t r0, int64_t r1);
void quantize_act_portable(quant_act *a, const float *x, int t0, int t1);
/* The int8-activation kernels: portable (quant8_portable.c), AVX2 (quant8_avx2.c),
 * AVX512-VNNI (quant8_avx512.c) and AVX-VNNI (quant8_avxvnni.c), the last two only on CPUs
 * that have them. */
void quant8_rows_portable(float *y, int64_t ldy, const quant_act8 *a, const weight *w, int64_t r0,
                          int64_t r1);
void quantize_act8_portable(quant_act8 *a, const float *x, int t0, int t1);
void quant8_rows_avx2(float *y, int64_t ldy, const quant_act8 *a, const weight *w, int64_t r0,
                      int64_t r1);
void quantize_act8_avx2(quant_act8 *a, const float *x, int t0, int t1);
void quant8_rows_avx512(float *y, int64_t ldy, const quant_act8 *a, const weight *w, int64_t r0,
                        int64_t r1);
void quant8_rows_avxvnni(float *y, int64_t ldy, const quant_act8 *a, const weight *w, int64_t r0,
                         int64_t r1);
/* Position of value j of a row in the 4-bit decode order of q4. */
static inline int64_t act8_pos4(int64_t j, int group_size) {
    int64_t in = j & 31, even = (in & 1) == 0, half = in >> 1;
    if (group_size == 32) return (j & ~(int64_t)31) + (even ? 0 : 16) + half;
    /* blocks in pairs: evens of the first, evens of the second, odds of the first, odds of the
     * second */
    int64_t base = j & ~(int64_t)63, second = (j >> 5) & 1;
    return base + (even ? 0 : 32) + second * 16 + half;
}
/* Runs CALL(B) and returns, B the constant for `bits` among the packed widths 2, 3, 4, 5, 6 and
 * 8 (anything else: 8): the tile headers instantiate their code once per width this way. */
#define SWITCH_WIDTH(bits, CALL)                                                                   \
    switch (bits) {                                                                                \
    case 2:                                                                                        \
        CALL(2);                                                                                   \
        return;                                                                                    \
    case 3:                                                                                        \
        CALL(3);                                                                                   \
        return;                                                                                    \
    case 4:                                                                                        \
        CALL(4);                                                                                   \
        return;                                                                                    \
    case 5:                                                                                        \
        CALL(5);                                                                                   \
        return;                                                                                    \
    case 6:                                                                                        \
        CALL(6);                                                                                   \
        return;                                                                                    \
    default:                                                                                       \
        CALL(8);                                                                                   \
        return;                                                                                    \
    }

/* Code j of a row of packed codes (a little-endian bit stream). */
unsigned quant_code_at(const uint32_t *row, int64_t j, int bits);
/* Bytes of one group of one tile of interleaved w: the codes of its 8 rows, then their 8 scales
 * and 8 biases (compute.h). */
#define INTERLEAVED_GROUP_BYTES(group_size, bits)                                                  \
    ((int64_t)(group_size) * (bits) + 2 * QUANT_TILE_ROWS * (int64_t)sizeof(uint16_t))
static inline int64_t interleaved_group_bytes(const weight *w) {
    return INTERLEAVED_GROUP_BYTES(w->group_size, w->bits);
}
/* Code k, and the scale and bias of group g, of row r of quantized w in either layout
 * (row-major or interleaved: interleave.c). */
unsigned quant_code(const weight *w, int64_t r, int64_t k);
float quant_scale(const weight *w, int64_t r, int64_t g);
float quant_bias(const weight *w, int64_t r, int64_t g);
/* A buffer of bytes for w's copy in a compute layout (named in the error): 2 MiB-aligned with
 * huge pages when large, freed with free(); NULL + error when out of memory (panels.c). */
uint8_t *weight_buffer(const weight *w, size_t bytes, const char *layout);
/* Value i of p (F32, F16 or BF16) as float: dense weights, and quantized weights' per-group
 * scales and biases. */
float value_at(const void *p, enum dtype t, int64_t i);
/* The AVX2 (+FMA, F16C, BMI2) versions (quant_avx2.c). */
void quant_rows_avx2(float *y, int64_t ldy, const quant_act *a, int t0, int t1, const weight *w,
                     int64_t r0, int64_t r1);
void quantize_act_avx2(quant_act *a, const float *x, int t0, int t1);
/* The same tiles with AVX512-VNNI (quant_avx512.c): only on CPUs that have it. */
void quant_rows_avx512(float *y, int64_t ldy, const quant_act *a, int t0, int t1, const weight *w,
                       int64_t r0, int64_t r1);
/* One weight of a (possibly fused) matmul's parallel pass (matmul.c, quant_matmul.c): its
 * output, rows per task and first task index. */
typedef struct matmul_part {
    float *y;
    const weight *w;
    int64_t rows_per_task;
    int first_task;
} matmul_part;

/* Fills part m, whose tasks start at `first`; returns how many tasks it has. */
static inline int matmul_part_plan(matmul_part *m, float *y, const weight *w, int64_t rows_per_task,
                                   int first) {
    *m = (matmul_part){.y = y, .w = w, .rows_per_task = rows_per_task, .first_task = first};
    return (int)((w->rows + rows_per_task - 1) / rows_per_task);
}

/* The part of `count` that task `task` belongs to, and its rows [*r0, *r1). */
static inline const matmul_part *matmul_part_of(const matmul_part *part, int count, int task,
                                                int64_t *r0, int64_t *r1) {
    int p = count - 1;
    while (p > 0 && task < part[p].first_task) p--;
    const matmul_part *m = &part[p];
    *r0 = (task - m->first_task) * m->rows_per_task;
    *r1 = *r0 + m->rows_per_task < m->w->rows ? *r0 + m->rows_per_task : m->w->rows;
    return m;
}

/* y[i] = x·w[i]ᵀ for quantized w[i] of the same cols and group size (quant_matmul.c): x is
 * quantized once, and all weights' rows share one parallel pass. */
void quant_matmul_fused(thread_pool *pool, float *const *y, const float *x, int n,
                        const weight *const *w, int count);
/* Dequantizes row `row` of an MLX affine-quantized weight into out[w->cols]. */
void dequantize_row(float *out, const weight *w, int64_t row);

#endif
