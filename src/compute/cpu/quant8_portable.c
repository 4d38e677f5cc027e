/*
 * quant8_portable.c — the portable definition of the int8-activation path for MLX affine-
 * quantized weights (kernels.h, quant_act8): activations quantized to int8 per 32-value block,
 * integer dot products per block, each block's sum scaled in float in a fixed order. The AVX2
 * variants (quant8_tiles.h) give bit-identical results; tests/unit/test_quant_kernels.c checks it.
 */
#include "compute/cpu/kernels.h"

#include <float.h>
#include <math.h>

void quantize_act8_portable(quant_act8 *a, const float *x, int t0, int t1) {
    const int bpg = a->group_size / QUANT8_BLOCK;
    for (int t = t0; t < t1; t++) {
        const float *xt = x + (int64_t)t * a->cols;
        for (int b = 0; b < a->blocks; b++) {
            int8_t *q = a->q + act8_at(a, t, b) * QUANT8_BLOCK;
            const float *xb = xt + (int64_t)b * QUANT8_BLOCK;
            float max = 0;
            bool finite = true;
            for (int i = 0; i < QUANT8_BLOCK; i++) {
                float ax = fabsf(xb[i]);
                if (ax <= FLT_MAX)
                    max = fmaxf(max, ax);
                else
                    finite = false;
            }
            const bool zero = !finite || max < QUANT8_TINY;
            const float inv = zero ? 0 : 127.0f / max;
            int32_t sum = 0;
            for (int i = 0; i < QUANT8_BLOCK; i++) {
                int8_t v = zero ? 0 : (int8_t)rintf(xb[i] * inv);
                q[i] = v;
                if (a->q4) a->q4[act8_pos4((int64_t)b * QUANT8_BLOCK + i, a->group_size)] = v;
                sum += v;
            }
            a->dx[act8_at(a, t, b)] = !finite ? NAN : zero ? 0 : max / 127.0f;
            a->csum[act8_at(a, t, b)] = sum;
        }
        for (int g = 0; g < a->groups; g++) {
            float xs = 0;
            for (int b = g * bpg; b < (g + 1) * bpg; b++)
                xs = fmaf(a->dx[act8_at(a, t, b)], (float)a->csum[act8_at(a, t, b)], xs);
            a->xs[act8_at(a, t, g)] = xs;
        }
    }
}

void quant8_rows_portable(float *y, int64_t ldy, const quant_act8 *a, const weight *w, int64_t r0,
                          int64_t r1) {
    const int groups = a->groups, bpg = w->group_size / QUANT8_BLOCK;
    for (int64_t r = r0; r < r1; r++) {
        for (int t = 0; t < a->n; t++) {
            float acc = 0;
            for (int g = 0; g < groups; g++) {
                float s = quant_scale(w, r, g), bias = quant_bias(w, r, g);
                for (int b = g * bpg; b < (g + 1) * bpg; b++) {
                    const int8_t *q = a->q + act8_at(a, t, b) * QUANT8_BLOCK;
                    int32_t isum = 0;
                    for (int i = 0; i < QUANT8_BLOCK; i++)
                        isum += (int32_t)quant_code(w, r, (int64_t)b * QUANT8_BLOCK + i) * q[i];
                    acc = fmaf((float)isum, s * a->dx[act8_at(a, t, b)], acc);
                }
                acc = fmaf(bias, a->xs[act8_at(a, t, g)], acc);
            }
            y[(int64_t)t * ldy + r] = acc;
        }
    }
}
