/*
 * random_model.h — what the random-weight model generators share: the model shapes
 * (make_random_model writes them in the Hugging Face / MLX layout, make_random_gguf in llama.cpp's
 * GGUF), and the one random generator and the random half-precision fill. Header-only: each bench
 * tool is one C file.
 */
#ifndef KILN_BENCH_RANDOM_MODEL_H
#define KILN_BENCH_RANDOM_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "compute/compute.h" /* f32_to_f16, f32_to_bf16 */

typedef struct shape {
    const char *name;
    int dim, layers, heads, kv_heads, head_dim, ffn, vocab, ctx;
    double rope_theta, norm_eps;
    bool llama3_rope;
} shape;

static const shape shapes[] = {
    {"llama-1b", 2048, 16, 32, 8, 64, 8192, 128256, 131072, 500000.0, 1e-5, true},
    {"smollm-135m", 576, 30, 9, 3, 64, 1536, 49152, 2048, 10000.0, 1e-5, false},
    /* Small enough for server tests, with a context long enough to exercise paging. */
    {"tiny-long", 64, 2, 4, 2, 16, 192, 512, 65536, 1000000.0, 1e-5, false},
};

/* The shape called name, or NULL after a message naming the known ones. */
static inline const shape *shape_named(const char *tool, const char *name) {
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(shapes[i].name, name)) return &shapes[i];
    fprintf(stderr, "%s: unknown shape \"%s\" (llama-1b, smollm-135m, tiny-long)\n", tool, name);
    return NULL;
}

/* Prints a tool's usage line; returns code (0 for --help, 2 for a bad command line). */
static inline int usage_exit(const char *usage, int code) {
    fprintf(stderr, "usage: %s\n", usage);
    return code;
}

static uint64_t rng_state = 1;

static inline void rng_seed(uint64_t seed) {
    rng_state = seed * 0x9E3779B97F4A7C15ull + 0x1234567ull;
    if (!rng_state) rng_state = 1;
}

static inline uint64_t rng_next(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

/* n random F16 (f16) or BF16 values in ±[amp/2, amp): the 16-bit pattern is built straight from
 * random bits (amp/2's exponent, a random mantissa and sign), ~20x faster than converting floats
 * one by one. */
static inline void fill_half(uint16_t *h, size_t n, float amp, bool f16) {
    uint16_t mant_mask = f16 ? 0x3ff : 0x7f;
    uint16_t base = f16 ? f32_to_f16(amp * 0.5f) : f32_to_bf16(amp * 0.5f);
    base &= (uint16_t)~mant_mask;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint64_t r = rng_next();
        for (int k = 0; k < 4; k++) {
            uint16_t b = (uint16_t)(r >> (16 * k));
            h[i + k] = (uint16_t)(base | (b & mant_mask) | (b & 0x8000));
        }
    }
    for (; i < n; i++) h[i] = base;
}

#endif
