/*
 * kernels.h — private to compute/cpu: the table of per-instruction-set kernels. dispatch.c
 * picks one table at first use from the CPU's features; portable.c is the reference every
 * variant must agree with.
 */
#ifndef KILN_CPU_KERNELS_H
#define KILN_CPU_KERNELS_H

#include "compute/compute.h"

typedef struct cpu_kernels {
    const char *name;
    /* y[t * ldy + r] = dot(row r of dense weight w, x + t * w->cols) for t < n, r in [r0, r1) */
    void (*dense_rows)(float *y, int64_t ldy, const float *x, int n, const weight *w, int64_t r0,
                       int64_t r1);
    /* The same for MLX affine-quantized weights (NULL: not available in this variant). */
    void (*quant_rows)(float *y, int64_t ldy, const float *x, int n, const weight *w, int64_t r0,
                       int64_t r1);
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
void silu_mul_portable(float *a, const float *b, int n);
void silu_mul_avx2(float *a, const float *b, int n);
/* Portable reference for quantized rows (dequantizes a group at a time). */
void quant_rows_portable(float *y, int64_t ldy, const float *x, int n, const weight *w, int64_t r0,
                         int64_t r1);
/* Dequantizes row `row` of an MLX affine-quantized weight into out[w->cols]. */
void dequantize_row(float *out, const weight *w, int64_t row);

#endif
