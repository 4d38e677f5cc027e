/*
 * ops.c — the small per-token ops of the forward pass (norms, rotary embedding, activation,
 * softmax). They touch activations only, so plain C is fast enough; the heavy loops (matmul,
 * attention's dot products) go through the kernel table.
 */
#include "compute/cpu/kernels.h"

#include <math.h>

void op_rmsnorm(float *y, const float *x, const float *g, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float inv = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++) y[i] = x[i] * inv * (g ? g[i] : 1.0f);
}

void op_rope(float *v, int n_heads, int head_dim, int pos, const float *inv_freq,
             bool interleaved) {
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        float angle = (float)pos * inv_freq[i];
        float c = cosf(angle), s = sinf(angle);
        for (int h = 0; h < n_heads; h++) {
            float *hv = v + h * head_dim;
            int a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + half;
            float x0 = hv[a], x1 = hv[b];
            hv[a] = x0 * c - x1 * s;
            hv[b] = x0 * s + x1 * c;
        }
    }
}

void op_silu_mul(float *a, const float *b, int n) {
    cpu_kernels_get()->silu_mul(a, b, n);
}

void op_add(float *y, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += x[i];
}

void op_softmax(float *x, int n) {
    float max = x[0];
    for (int i = 1; i < n; i++)
        if (x[i] > max) max = x[i];
    float sum = 0;
    for (int i = 0; i < n; i++) sum += x[i] = expf(x[i] - max);
    for (int i = 0; i < n; i++) x[i] /= sum;
}

float op_dot(const float *a, const float *b, int n) {
    return cpu_kernels_get()->dot(a, b, n);
}

void op_attend(float *acc, float *max, float *sum, const float *q, const float *k, const float *v,
               int run, int hd, float scale) {
    cpu_kernels_get()->attend(acc, max, sum, q, k, v, run, hd, scale);
}

void op_axpy(float *y, float a, const float *x, int n) {
    cpu_kernels_get()->axpy(y, a, x, n);
}
