/*
 * convert.h — the face of the convert layer: writing models in the MLX layout. A Hugging Face
 * float model becomes an MLX affine-quantized one (or a quantized one becomes float again),
 * tensor by tensor, into a temporary folder renamed into place at the end.
 */
#ifndef KILN_CONVERT_H
#define KILN_CONVERT_H

#include "compute/compute.h"

typedef struct convert_opts {
    const char *src, *out;
    int bits, group_size; /* bits 0 with dequantize */
    const char *dtype;    /* "float16" | "bfloat16" | "float32" | NULL: keep each tensor's */
    const char *recipe;   /* "mixed_3_6", ... or NULL */
    bool dequantize, force, quiet;
    uint64_t max_shard_bytes; /* 0: 5 GB */
} convert_opts;

/* Runs the conversion; -1 + error (OUT untouched, the temporary folder removed). */
int convert_model(const convert_opts *o);

/* ---- MLX affine quantization (affine.c) ---- */
/* Packs n codes as a little-endian bit stream (the MLX layout) into out[n * bits / 8]. */
void affine_pack(const uint8_t *codes, int64_t n, int bits, uint8_t *out);
/* The bits of a recipe's module: -1 if the recipe is unknown. */
int recipe_bits(const char *recipe, const char *module, int n_layers);
bool recipe_known(const char *recipe);

#endif
