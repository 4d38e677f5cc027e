/*
 * affine.c — MLX's affine quantization, transcribed from mlx's own source
 * (mlx/backend/cpu/quantized.cpp, quantize<T, U>): float arithmetic in the same order, so kiln
 * convert writes the codes, scales and biases mlx would for the same input. Also mlx-lm's
 * mixed-precision recipes (mlx_lm/convert.py, mixed_quant_predicate_builder).
 */
#include "convert/convert.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void affine_quantize_group(const float *w, int n, int bits, uint8_t *codes, float *scale,
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

void affine_pack(const uint8_t *codes, int64_t n, int bits, uint8_t *out) {
    uint64_t acc = 0;
    int have = 0;
    int64_t o = 0;
    for (int64_t i = 0; i < n; i++) {
        acc |= (uint64_t)codes[i] << have;
        have += bits;
        while (have >= 8) {
            out[o++] = (uint8_t)acc;
            acc >>= 8;
            have -= 8;
        }
    }
    if (have > 0) out[o] = (uint8_t)acc;
}

static const struct {
    const char *name;
    int low, high;
} recipes[] = {
    {"mixed_2_6", 2, 6}, {"mixed_3_4", 3, 4}, {"mixed_3_5", 3, 5}, {"mixed_3_6", 3, 6},
    {"mixed_3_8", 3, 8}, {"mixed_4_6", 4, 6}, {"mixed_4_8", 4, 8},
};

bool recipe_known(const char *recipe) {
    for (size_t i = 0; i < ARRAY_LEN(recipes); i++)
        if (!strcmp(recipes[i].name, recipe)) return true;
    return false;
}

/* The layer index: the first path component made of digits (0 when none). */
static int layer_index(const char *module) {
    const char *p = module;
    while (*p) {
        const char *end = strchr(p, '.');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        bool digits = len > 0;
        for (size_t i = 0; i < len; i++) digits &= p[i] >= '0' && p[i] <= '9';
        if (digits) return atoi(p);
        if (!end) break;
        p = end + 1;
    }
    return 0;
}

/* mlx-lm: more bits for v_proj and down_proj in the first and last eighth of the layers and
 * every third layer between, and for the embedding and lm_head. */
int recipe_bits(const char *recipe, const char *module, int n_layers) {
    for (size_t i = 0; i < ARRAY_LEN(recipes); i++) {
        if (strcmp(recipes[i].name, recipe)) continue;
        int index = layer_index(module);
        bool more =
            index < n_layers / 8 || index >= 7 * n_layers / 8 || (index - n_layers / 8) % 3 == 2;
        if (more && (strstr(module, "v_proj") || strstr(module, "down_proj")))
            return recipes[i].high;
        if (strstr(module, "lm_head") || strstr(module, "embed_tokens")) return recipes[i].high;
        return recipes[i].low;
    }
    return -1;
}
