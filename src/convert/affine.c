/*
 * affine.c — the MLX layout's bit packing (a little-endian bit stream per row, as mlx's
 * quantize() in mlx/backend/cpu/quantized.cpp writes it) and mlx-lm's mixed-precision recipes
 * (mlx_lm/convert.py, mixed_quant_predicate_builder). The quantizer itself is
 * quant_affine_group in the compute layer (the KV cache uses it too).
 */
#include "convert/convert.h"

#include <stdlib.h>
#include <string.h>

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
