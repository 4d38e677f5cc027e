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

typedef struct cpu_kernels {
    const char *name;
    /* y[t * ldy + r] = dot(row r of dense weight w, x + t * w->cols) for t < n, r in [r0, r1) */
    void (*dense_rows)(float *y, int64_t ldy, const float *x, int n, const weight *w, int64_t r0,
                       int64_t r1);
    /* y[t * ldy + r] = dot(row r of MLX affine-quantized w, token t of a) for t in [t0, t1),
     * r in [r0, r1): integer dot products of the codes with the int16 activations per group. */
    void (*quant_rows)(float *y, int64_t ldy, const quant_act *a, int t0, int t1, const weight *w,
                       int64_t r0, int64_t r1);
    /* Quantizes tokens [t0, t1) of x into a (every variant gives identical codes and scales). */
    void (*quantize_act)(quant_act *a, const float *x, int t0, int t1);
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
/* Dense prefill helpers (dense_avx2.c): the calling thread's panel buffer of at least `floats`
 * floats (grown rarely, freed with the thread; NULL when out of memory), and the packing of
 * rows [r, r + nr) of w as panel[k * width + i] f32 (width a multiple of 8, rows past nr 0). */
float *dense_panel_buffer(int64_t floats);
void dense_pack_panel(float *panel, int width, const weight *w, int64_t r, int nr);
/* AVX-512 dense rows (dense_avx512.c): 32-row × 12-token panels for prefill. */
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
/* Code j of a row of packed codes (a little-endian bit stream). */
unsigned quant_code_at(const uint32_t *row, int64_t j, int bits);
/* A weight's per-group scale/bias value i as float. */
float quant_scale_at(const void *p, enum dtype t, int64_t i);
/* The AVX2 (+FMA, F16C, BMI2) versions (quant_avx2.c). */
void quant_rows_avx2(float *y, int64_t ldy, const quant_act *a, int t0, int t1, const weight *w,
                     int64_t r0, int64_t r1);
void quantize_act_avx2(quant_act *a, const float *x, int t0, int t1);
/* The same tiles with AVX512-VNNI (quant_avx512.c): only on CPUs that have it. */
void quant_rows_avx512(float *y, int64_t ldy, const quant_act *a, int t0, int t1, const weight *w,
                       int64_t r0, int64_t r1);
/* y = x·wᵀ for quantized w (quant_matmul.c). */
void quant_matmul(thread_pool *pool, float *y, const float *x, int n, const weight *w);
/* Dequantizes row `row` of an MLX affine-quantized weight into out[w->cols]. */
void dequantize_row(float *out, const weight *w, int64_t row);

#endif
