/*
 * quant_affine.c — MLX's affine quantization of one group, transcribed from mlx's own source
 * (mlx/backend/cpu/quantized.cpp, quantize<T, U>) with the float arithmetic in the same order,
 * so kiln writes the codes, scales and biases mlx would. Used by kiln convert and the
 * quantized KV cache.
 */
#include "compute/compute.h"

#include <math.h>

void quant_affine_group(const float *w, int n, int bits, uint8_t *codes, float *scale,
                        float *bias) {
    const float n_bins = (float)((1 << bits) - 1), eps = 1e-7f;
    float w_min = INFINITY, w_max = -INFINITY;
    for (int i = 0; i < n; i++) {
        w_max = fmaxf(w_max, w[i]);
        w_min = fminf(w_min, w[i]);
    }
    bool mask = fabsf(w_min) > fabsf(w_max);
    float s = fmaxf((w_max - w_min) / n_bins, eps);
    s = mask ? s : -s;
    float edge = mask ? w_min : w_max;
    float q0 = rintf(edge / s);
    float b = 0;
    if (q0 != 0) {
        s = edge / q0;
        b = edge;
    }
    for (int i = 0; i < n; i++) {
        float q = rintf((w[i] - b) / s);
        codes[i] = (uint8_t)fminf(fmaxf(q, 0.0f), n_bins);
    }
    *scale = s;
    *bias = b;
}
