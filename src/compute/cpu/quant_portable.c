/*
 * quant_portable.c — the portable integer kernels for MLX affine-quantized weights: activations
 * quantized to int16 per weight group, integer dot products per group, the group's scale and
 * bias applied in float. The SIMD variants (quant_avx2.c) compute the same integers; only the
 * order of the float additions differs.
 *
 * Layout of the activation codes: natural order, except for 4-bit weights, where each 32-value
 * chunk holds its 16 even-indexed values, then its 16 odd-indexed ones (so the AVX2 kernel can
 * split a byte's two nibbles without interleaving them).
 */
#include "compute/cpu/kernels.h"

#include <math.h>

/* Position of value j (within its row) in the activation codes for weights of `bits`. */
static inline int64_t act_pos(int64_t j, int bits) {
    if (bits != 4) return j;
    int64_t in_chunk = j & 31;
    return (j & ~(int64_t)31) + (in_chunk & 1) * 16 + (in_chunk >> 1);
}

void quantize_act_portable(quant_act *a, const float *x, int t0, int t1) {
    const int gs = a->group_size;
    for (int t = t0; t < t1; t++) {
        const float *xt = x + (int64_t)t * a->cols;
        int16_t *q = a->q + (int64_t)t * a->cols;
        for (int g = 0; g < a->groups; g++) {
            const float *xg = xt + (int64_t)g * gs;
            float max = 0;
            for (int i = 0; i < gs; i++) max = fmaxf(max, fabsf(xg[i]));
            float inv = max > 0 ? (float)QUANT_ACT_MAX / max : 0;
            float dx = max / (float)QUANT_ACT_MAX;
            int32_t sum = 0;
            for (int i = 0; i < gs; i++) {
                float v = rintf(xg[i] * inv);
                v = fminf(fmaxf(v, -QUANT_ACT_MAX), QUANT_ACT_MAX);
                q[act_pos((int64_t)g * gs + i, a->bits)] = (int16_t)v;
                sum += (int32_t)v;
            }
            float *dxv = a->dxv + ((int64_t)t * a->groups + g) * 8;
            for (int i = 0; i < 8; i++) dxv[i] = dx;
            a->dx[(int64_t)t * a->groups + g] = dx;
            a->xs[(int64_t)t * a->groups + g] = dx * (float)sum;
        }
    }
}

void quant_rows_portable(float *y, int64_t ldy, const quant_act *a, int t0, int t1, const weight *w,
                         int64_t r0, int64_t r1) {
    const int gs = w->group_size, groups = a->groups;
    const int64_t words = w->cols * w->bits / 32;
    for (int64_t r = r0; r < r1; r++) {
        const uint32_t *codes = (const uint32_t *)w->data + r * words;
        for (int t = t0; t < t1; t++) {
            const int16_t *q = a->q + (int64_t)t * a->cols;
            float acc = 0, bias_acc = 0;
            for (int g = 0; g < groups; g++) {
                int32_t isum = 0;
                for (int64_t j = (int64_t)g * gs; j < (int64_t)(g + 1) * gs; j++)
                    isum += (int32_t)quant_code_at(codes, j, w->bits) * q[act_pos(j, w->bits)];
                float s = value_at(w->scales, w->scale_dtype, r * groups + g);
                float b = value_at(w->biases, w->scale_dtype, r * groups + g);
                acc += s * (a->dxv[((int64_t)t * groups + g) * 8] * (float)isum);
                bias_acc += b * a->xs[(int64_t)t * groups + g];
            }
            y[(int64_t)t * ldy + r] = acc + bias_acc;
        }
    }
}
