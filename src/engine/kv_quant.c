/*
 * kv_quant.c — the records of the quantized KV cache and the attention math on them. A record
 * is one head vector of one position: head_dim codes (4 bits: two per byte, low nibble first;
 * 8 bits: one byte — the MLX bit stream), then a float scale and bias per group, made by
 * MLX's affine rule (quant_affine_group). Attention reads them without dequantizing:
 *   q·k = Σ_g scale_g·(q_g·codes_g) + bias_g·Σ q_g
 *   acc += w·v: acc_g += (w·scale_g)·codes_g + w·bias_g
 */
#include "engine/internal.h"

#include <string.h>

#define MAX_CODES 512

static inline unsigned code_of(const uint8_t *codes, int i, int bits) {
    return bits == 8 ? codes[i] : (unsigned)(codes[i >> 1] >> ((i & 1) * 4)) & 15u;
}

void kv_quant_store(uint8_t *rec, const float *x, int hd, int bits, int group) {
    uint8_t codes[MAX_CODES];
    uint8_t *params = rec + hd * bits / 8;
    for (int g = 0; g < hd / group; g++) {
        float sb[2];
        quant_affine_group(x + g * group, group, bits, codes + g * group, &sb[0], &sb[1]);
        memcpy(params + 8 * g, sb, sizeof sb); /* records are not float-aligned in general */
    }
    if (bits == 8) {
        memcpy(rec, codes, (size_t)hd);
        return;
    }
    for (int i = 0; i < hd; i += 2) rec[i / 2] = (uint8_t)(codes[i] | codes[i + 1] << 4);
}

float kv_quant_dot(const uint8_t *rec, const float *q, int hd, int bits, int group) {
    const uint8_t *p = rec + hd * bits / 8;
    float total = 0;
    for (int g = 0; g < hd / group; g++) {
        float sb[2], dot = 0, qsum = 0;
        memcpy(sb, p + 8 * g, sizeof sb);
        for (int i = g * group; i < (g + 1) * group; i++) {
            dot += q[i] * (float)code_of(rec, i, bits);
            qsum += q[i];
        }
        total += sb[0] * dot + sb[1] * qsum;
    }
    return total;
}

void kv_quant_axpy(float *acc, float w, const uint8_t *rec, int hd, int bits, int group) {
    const uint8_t *p = rec + hd * bits / 8;
    for (int g = 0; g < hd / group; g++) {
        float sb[2];
        memcpy(sb, p + 8 * g, sizeof sb);
        float ws = w * sb[0], wb = w * sb[1];
        for (int i = g * group; i < (g + 1) * group; i++)
            acc[i] += ws * (float)code_of(rec, i, bits) + wb;
    }
}
