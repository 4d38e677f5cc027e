/*
 * dtype.c — element types and conversions between float formats (f16 per IEEE 754 half,
 * bf16 as the top half of an f32).
 */
#include "compute/compute.h"

#include <string.h>

static const struct {
    const char *name;
    size_t size;
} dtypes[DT_COUNT] = {
    [DT_F32] = {"F32", 4}, [DT_F16] = {"F16", 2}, [DT_BF16] = {"BF16", 2}, [DT_U32] = {"U32", 4},
    [DT_I8] = {"I8", 1},   [DT_U8] = {"U8", 1},   [DT_I32] = {"I32", 4},   [DT_I64] = {"I64", 8},
};

size_t dtype_size(enum dtype t) {
    return (unsigned)t < DT_COUNT ? dtypes[t].size : 0;
}

const char *dtype_name(enum dtype t) {
    return (unsigned)t < DT_COUNT ? dtypes[t].name : "?";
}

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0) { /* zero or subnormal: mant * 2^-24 */
        float f = (float)mant * 5.9604644775390625e-8f;
        return sign ? -f : f;
    }
    if (exp == 31) return float_of(sign | 0x7f800000 | (mant << 13));
    return float_of(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t f32_to_f16(float f) {
    uint32_t u = bits_of(f);
    uint32_t sign = (u >> 16) & 0x8000;
    int32_t exp = (int32_t)((u >> 23) & 0xff) - 127 + 15;
    uint32_t mant = u & 0x7fffff;
    if (((u >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) { /* subnormal or zero */
        if (exp < -10) return (uint16_t)sign;
        mant |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)exp << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; /* may carry into exponent: ok */
    return (uint16_t)half;
}

uint16_t f32_to_bf16(float f) {
    uint32_t u = bits_of(f);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

void to_f32(float *dst, const void *src, enum dtype t, size_t n) {
    if (t == DT_F32) {
        memcpy(dst, src, n * 4);
    } else if (t == DT_F16) {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = f16_to_f32(s[i]);
    } else if (t == DT_BF16) {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = bf16_to_f32(s[i]);
    }
}

size_t weight_bytes(const weight *w) {
    if (!weight_is_quantized(w)) return (size_t)(w->rows * w->cols) * dtype_size(w->dtype);
    size_t codes = (size_t)(w->rows * w->cols * w->bits / 8);
    size_t groups = (size_t)(w->rows * (w->cols / w->group_size));
    return codes + 2 * groups * dtype_size(w->scale_dtype);
}
