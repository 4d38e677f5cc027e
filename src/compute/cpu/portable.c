/*
 * portable.c — the plain-C kernels: the reference that SIMD variants must agree with, and the
 * fallback on CPUs without them (KILN_ISA=portable forces it).
 */
#include "compute/cpu/kernels.h"

#include <math.h>

static void dense_rows_portable(float *y, int64_t ldy, const float *x, int n, const weight *w,
                                int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
        const int64_t first = panel_index(w, r);
        for (int t = 0; t < n; t++) {
            const float *xt = x + (int64_t)t * w->cols;
            float acc = 0;
            for (int64_t k = 0, i = first; k < w->cols; k++, i += WEIGHT_PANEL)
                acc = fmaf(value_at(w->data, w->dtype, i), xt[k], acc); /* every variant's chain */
            y[(int64_t)t * ldy + r] = acc;
        }
    }
}

float value_at(const void *p, enum dtype t, int64_t i) {
    switch (t) {
    case DT_F16:
        return f16_to_f32(((const uint16_t *)p)[i]);
    case DT_BF16:
        return bf16_to_f32(((const uint16_t *)p)[i]);
    default:
        return ((const float *)p)[i];
    }
}

/* Codes are a little-endian bit stream per row: code j occupies bits [j*bits, (j+1)*bits) of the
 * row read as bytes (uint32 words stored little-endian). Confirmed against mlx's own source,
 * mlx/backend/cpu/quantized.cpp: quantize() ORs code k of a pack at bit k*bits of a uint64 and
 * stores it whole (bits 2, 4, 8: one uint32 of 32/bits codes) or as its low 3 bytes (bits 3 and
 * 6: 8 resp. 4 codes) or 5 bytes (bits 5: 8 codes), low byte first; extract_bits() and _qmm_t()
 * read them back the same way (w_in[0] & 0x7, (w_in[0] & 0x38) >> 3, ...). The Metal kernels
 * (mlx/backend/metal/kernels/quantized.h, get_pack_factor/get_bytes_per_pack, load_vector's
 * 1, 1/8, 1/64, 1/2, ... factors for 3 bits) agree. */
unsigned quant_code_at(const uint32_t *row, int64_t j, int bits) {
    int64_t bit = j * bits;
    int64_t word = bit >> 5;
    int shift = (int)(bit & 31);
    uint64_t v = row[word] >> shift;
    if (shift + bits > 32) v |= (uint64_t)row[word + 1] << (32 - shift);
    return (unsigned)(v & ((1u << bits) - 1));
}

void dequantize_row(float *out, const weight *w, int64_t row) {
    int64_t groups = w->cols / w->group_size;
    for (int64_t g = 0; g < groups; g++) {
        float s = quant_scale(w, row, g), b = quant_bias(w, row, g);
        for (int64_t j = g * w->group_size; j < (g + 1) * w->group_size; j++)
            out[j] = s * (float)quant_code(w, row, j) + b;
    }
}

void quant_rows_reference(float *y, int64_t ldy, const float *x, int n, const weight *w, int64_t r0,
                          int64_t r1) {
    float *buf = xmalloc((size_t)w->cols * sizeof(float));
    for (int64_t r = r0; r < r1; r++) {
        dequantize_row(buf, w, r);
        for (int t = 0; t < n; t++) {
            const float *xt = x + (int64_t)t * w->cols;
            float acc = 0;
            for (int64_t k = 0; k < w->cols; k++) acc += buf[k] * xt[k];
            y[(int64_t)t * ldy + r] = acc;
        }
    }
    free(buf);
}

static float dot_portable(const float *a, const float *b, int n) {
    float acc = 0;
    for (int i = 0; i < n; i++) acc += a[i] * b[i];
    return acc;
}

static void axpy_portable(float *y, float a, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

void attend_portable(float *acc, float *max, float *sum, const float *q, const float *k,
                     const float *v, int run, int hd, float scale) {
    float s[OP_ATTEND_MAX_RUN], run_max = -INFINITY;
    for (int r = 0; r < run; r++) {
        s[r] = dot_portable(q, k + (size_t)r * hd, hd) * scale;
        if (s[r] > run_max) run_max = s[r];
    }
    if (run_max > *max) {
        float f = expf(*max - run_max);
        for (int d = 0; d < hd; d++) acc[d] *= f;
        *sum *= f;
        *max = run_max;
    }
    for (int r = 0; r < run; r++) {
        float w = expf(s[r] - *max);
        *sum += w;
        axpy_portable(acc, w, v + (size_t)r * hd, hd);
    }
}

void silu_mul_portable(float *a, const float *b, int n) {
    for (int i = 0; i < n; i++) a[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
}

const cpu_kernels cpu_kernels_portable = {
    .name = "portable",
    .dense_rows = dense_rows_portable,
    .pack_panels = pack_panels_portable,
    .quant_rows = quant_rows_portable,
    .quantize_act = quantize_act_portable,
    .quant8_rows = quant8_rows_portable,
    .quantize_act8 = quantize_act8_portable,
    .dot = dot_portable,
    .attend = attend_portable,
    .silu_mul = silu_mul_portable,
    .axpy = axpy_portable,
};
