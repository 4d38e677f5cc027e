/*
 * compute.h — the face of the compute layer: tensors as the kernels see them, and the ops the
 * forward pass is written against (matmul over dense or quantized weights, norms, rope,
 * activations). It knows nothing of models. CPU kernels live in cpu/ (a portable version and
 * SIMD variants chosen at run time); CUDA comes next behind the same calls.
 */
#ifndef KILN_COMPUTE_H
#define KILN_COMPUTE_H

#include "base/base.h"

enum dtype {
    DT_F32,
    DT_F16,
    DT_BF16,
    DT_U32, /* packed quantized codes (MLX layout) */
    DT_I8,
    DT_U8,
    DT_I32,
    DT_I64,
    DT_COUNT
};
size_t dtype_size(enum dtype t);
const char *dtype_name(enum dtype t);

/* A 2-D weight [rows = out features, cols = in features] in place (usually in an mmap).
 * Dense: data is row-major [rows, cols] of dtype, or in panel order once weight_to_panels()
 * made that copy (dense matmuls need it). Quantized (MLX affine): dtype DT_U32, data holds rows
 * of cols*bits/32 uint32 codes; scales and biases are [rows, cols/group_size] of scale_dtype
 * (F16, BF16 or F32); w = scale * q + bias per group. */
typedef struct weight {
    enum dtype dtype;
    int64_t rows, cols;
    const void *data;
    bool panels;          /* dense data in panel order (below) */
    bool interleaved;     /* quantized data, scales and biases in interleaved order (below) */
    int bits, group_size; /* 0 when dense */
    enum dtype scale_dtype;
    const void *scales, *biases;
} weight;

/* Panel order, the layout dense matmuls run on: rows in panels of WEIGHT_PANEL, each panel
 * [cols][WEIGHT_PANEL], i.e. column k of the panel's 16 rows side by side, so every kernel
 * reads one sequential stream and turns one load into 16 rows' products with no packing at
 * run time. BF16 columns hold the rows as 0, 8, 1, 9, …, 7, 15 (one 32-bit lane = rows j and
 * j + 8, split into two f32 vectors by a shift and a mask); F16 and F32 in order. Rows past the
 * last are zero. Every kernel computes y[t][r] = fma over k in order (acc = fma(w[r][k], x[t][k],
 * acc) from 0), so results are bit-identical across instruction sets, batch sizes and tiles. */
#define WEIGHT_PANEL 16
/* Copies dense w into panel order on the threads of pool (may be NULL): returns the new buffer
 * (the caller frees it) and points w at it; NULL + error when out of memory. */
void *weight_to_panels(weight *w, thread_pool *pool);
/* Element (r, k) of dense w, row-major or panels, as float. */
float weight_dense_at(const weight *w, int64_t r, int64_t k);

/* Interleaved order, the layout 4- and 8-bit weights run in on x86 (MLX's row-major layout
 * makes a decode step sum each row's products across a vector, which costs more than the
 * products on AVX2): rows in tiles of QUANT_TILE_ROWS, each tile one sequential stream of its
 * groups in order; a group holds its blocks of 32 codes, then the tile's scales, then its
 * biases (scale dtype, row i at index i). A block is 4-byte quads as 32-bit lanes, lane i =
 * row i: at 8 bits 8 vectors of 32 bytes, vector j holding codes 4j..4j+3; at 4 bits 4
 * vectors, vector j's low nibbles codes 8j..8j+3 and high nibbles codes 8j+4..8j+7. So a step
 * broadcasts four activations and multiplies eight rows at once, with no horizontal sums.
 * Every kernel computes the same values as on the row-major layout (bit-identical). */
#define QUANT_TILE_ROWS 8
/* Whether w (quantized, row-major) can be interleaved: 4 or 8 bits, groups of 32, 64 or 128,
 * F16 or BF16 scales, whole tiles of rows. */
bool weight_can_interleave(const weight *w);
/* Copies w into interleaved order on the threads of pool (may be NULL): returns the new buffer
 * (the caller frees it) and points w at it; NULL + error when out of memory. */
void *weight_interleave(weight *w, thread_pool *pool);
/* Whether loading should interleave the quantized weights that can be: with int8 activations
 * on the 256-bit kernels (AVX2, AVX2-VNNI), where it is faster; the AVX-512 tiles read MLX's
 * rows at full speed. KILN_QUANT_LAYOUT=rows keeps MLX's layout, =interleaved interleaves with
 * any SIMD table (to compare the two). */
bool compute_interleaves_quantized(void);

static inline bool weight_is_quantized(const weight *w) {
    return w->bits != 0;
}
/* Bytes a full pass over the weight reads (what a decode step streams from memory). */
size_t weight_bytes(const weight *w);

/* ---- MLX affine quantization ---- */
/* Quantizes one group of n values as mlx's quantize() does (mlx/backend/cpu/quantized.cpp):
 * the end of larger magnitude is kept exact (it becomes the bias, or 0 stays 0), scale =
 * (max - min) / (2^bits - 1) adjusted so that end is a whole number of steps (so the scale is
 * negative when that end is the maximum); codes are rint((w - bias) / scale) clamped to
 * [0, 2^bits - 1]; w ≈ scale · code + bias. */
void quant_affine_group(const float *w, int n, int bits, uint8_t *codes, float *scale, float *bias);

/* ---- numeric conversions ---- */
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
static inline float bf16_to_f32(uint16_t b) {
    union {
        uint32_t u;
        float f;
    } v = {.u = (uint32_t)b << 16};
    return v.f;
}
uint16_t f32_to_bf16(float f); /* round to nearest even */
/* Converts n values of dtype (F32, F16 or BF16) to float. */
void to_f32(float *dst, const void *src, enum dtype t, size_t n);

/* ---- ops (CPU) ---- */
/* y[n, w->rows] = x[n, w->cols] · wᵀ, on all threads of pool (may be NULL). */
void op_matmul(thread_pool *pool, float *y, const float *x, int n, const weight *w);
/* y[i] = x · w[i]ᵀ for i < count (at most OP_MATMUL_MAX_FUSED) in one parallel pass; every
 * w[i] has x's w->cols columns. Saves a thread barrier per extra weight (decode does ~100 a
 * token, and a core shared with other processes makes each one costly). */
#define OP_MATMUL_MAX_FUSED 4
void op_matmul_fused(thread_pool *pool, float *const *y, const float *x, int n,
                     const weight *const *w, int count);
/* Plans the calling thread's scratch for quantized matmuls of up to n tokens of up to cols
 * inputs, so op_matmul never allocates afterwards; -1 + error when out of memory. */
int op_matmul_reserve(int n, int64_t cols);
/* Activations of quantized matmuls: 8 (the default) quantizes them to int8 per 32 values, as
 * llama.cpp's Q8 blocks, for the fast integer kernels; 16 to int16 per weight group (about 4x
 * less error: the reference fixtures' logits move 1e-3 instead of ~1e-2; 2-3x slower prefill).
 * Process-wide; set before the first matmul. */
void compute_set_activation_bits(int bits);
int compute_activation_bits(void);
/* Reads bytes at p once on all threads of pool (may be NULL), chunk bytes a task (0: 1 MiB, less
 * for small reads so every thread has work), and
 * returns a checksum of them: the plain read that decode's weight reads are measured against. */
uint64_t op_read(thread_pool *pool, const void *p, size_t bytes, size_t chunk);
/* out[w->cols] = row `row` of w, dequantized (embedding lookup). */
void op_embedding(float *out, const weight *w, int64_t row);
/* y = x / rms(x) * g (g may be NULL); y may alias x. */
void op_rmsnorm(float *y, const float *x, const float *g, int n, float eps);
/* Rotary embedding on n_heads vectors of head_dim at position pos. inv_freq has head_dim/2
 * entries. interleaved: pairs (2i, 2i+1) as llama2.c; otherwise (i, i + head_dim/2) as HF. */
void op_rope(float *v, int n_heads, int head_dim, int pos, const float *inv_freq, bool interleaved);
/* a[i] = silu(a[i]) * b[i] */
void op_silu_mul(float *a, const float *b, int n);
void op_add(float *y, const float *x, int n); /* y += x */
void op_softmax(float *x, int n);
float op_dot(const float *a, const float *b, int n);
void op_axpy(float *y, float a, const float *x, int n); /* y += a·x */
/* One step of online-softmax attention for query q[hd] over `run` positions whose keys and
 * values are k[run][hd] and v[run][hd]: with scores s = scale·q·k, raises *max to the largest
 * score seen, rescales acc[hd] and *sum to it, then adds Σ exp(s - *max)·v to acc and
 * Σ exp(s - *max) to *sum. Start with *max = -INFINITY, *sum = 0, acc = 0; the attention
 * output is acc / *sum. run is at most OP_ATTEND_MAX_RUN. */
#define OP_ATTEND_MAX_RUN 64
void op_attend(float *acc, float *max, float *sum, const float *q, const float *k, const float *v,
               int run, int hd, float scale);

/* Instruction set in use ("avx512", "avx2", "portable"); KILN_ISA=portable forces the fallback. */
const char *compute_isa(void);

#endif
