/*
 * attention_avx2.c — the attention step (op_attend) and the SiLU gate with AVX2+FMA: scores as
 * 8-wide dot products, exp over 8 scores at a time (a Cephes-style polynomial, within 2 ulp of
 * expf), and the weighted sum of V with the accumulator held in registers 64 floats at a time.
 * Scores go four positions at a time, so each slice of q is loaded once per four keys. Head sizes
 * that are not a multiple of 8 take the portable path.
 */
#include "compute/cpu/kernels.h"
#include "compute/cpu/simd_avx2.h"

#include <immintrin.h>
#include <math.h>

/* exp(x) as 2^n · p(r) with x = n·ln2 + r, |r| <= ln2/2; x clamped to [-87.3, 88.3] (the
 * results stay normal floats; softmax and silu need no more). */
ALWAYS_INLINE __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* acc[0 .. 8·NV) += Σ_r w[r] · v[r][0 .. 8·NV), the accumulator in registers. */
ALWAYS_INLINE void weighted_sum(float *acc, const float *w, const float *v, int run, int hd,
                                const int NV) {
    __m256 a[8];
#pragma GCC unroll 8
    for (int i = 0; i < NV; i++) a[i] = _mm256_loadu_ps(acc + 8 * i);
    for (int r = 0; r < run; r++) {
        __m256 wr = _mm256_broadcast_ss(w + r);
        const float *vr = v + (size_t)r * hd;
#pragma GCC unroll 8
        for (int i = 0; i < NV; i++) a[i] = _mm256_fmadd_ps(wr, _mm256_loadu_ps(vr + 8 * i), a[i]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < NV; i++) _mm256_storeu_ps(acc + 8 * i, a[i]);
}

/* a[i] = silu(a[i]) · b[i] = a / (1 + exp(-a)) · b */
void silu_mul_avx2(float *a, const float *b, int n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(a + i);
        __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
        __m256 y = _mm256_div_ps(x, _mm256_add_ps(one, e));
        _mm256_storeu_ps(a + i, _mm256_mul_ps(y, _mm256_loadu_ps(b + i)));
    }
    for (; i < n; i++) a[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
}

void attend_avx2(float *acc, float *max, float *sum, const float *q, const float *k, const float *v,
                 int run, int hd, float scale) {
    if (hd % 8 != 0 || run > OP_ATTEND_MAX_RUN) {
        attend_portable(acc, max, sum, q, k, v, run, hd, scale);
        return;
    }
    float s[OP_ATTEND_MAX_RUN + 8] __attribute__((aligned(32)));
    float run_max = -INFINITY;
    int r = 0;
    /* Four positions at a time: each q slice loaded once, one reduction for four scores. */
    for (; r + 4 <= run; r += 4) {
        const float *k0 = k + (size_t)r * hd;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int d = 0; d < hd; d += 8) {
            __m256 qv = _mm256_loadu_ps(q + d);
            a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + d), a0);
            a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + hd + d), a1);
            a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + 2 * hd + d), a2);
            a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + 3 * hd + d), a3);
        }
        __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
        __m128 four = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
        _mm_storeu_ps(s + r, _mm_mul_ps(four, _mm_set1_ps(scale)));
        for (int i = 0; i < 4; i++)
            if (s[r + i] > run_max) run_max = s[r + i];
    }
    for (; r < run; r++) {
        const float *kr = k + (size_t)r * hd;
        __m256 a0 = _mm256_setzero_ps();
        for (int d = 0; d < hd; d += 8)
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(kr + d), a0);
        s[r] = hsum(a0) * scale;
        if (s[r] > run_max) run_max = s[r];
    }
    if (run_max > *max) {
        float f = expf(*max - run_max);
        __m256 fv = _mm256_set1_ps(f);
        for (int d = 0; d < hd; d += 8)
            _mm256_storeu_ps(acc + d, _mm256_mul_ps(fv, _mm256_loadu_ps(acc + d)));
        *sum *= f;
        *max = run_max;
    }
    __m256 m = _mm256_set1_ps(*max), total = _mm256_setzero_ps();
    for (r = 0; r + 8 <= run; r += 8) {
        __m256 w = exp8(_mm256_sub_ps(_mm256_load_ps(s + r), m));
        _mm256_store_ps(s + r, w);
        total = _mm256_add_ps(total, w);
    }
    float tail = 0;
    for (; r < run; r++) tail += s[r] = expf(s[r] - *max);
    *sum += hsum(total) + tail;
    for (int d = 0; d < hd; d += 64) {
        switch ((hd - d) / 8 < 8 ? (hd - d) / 8 : 8) {
        case 8:
            weighted_sum(acc + d, s, v + d, run, hd, 8);
            break;
        case 7:
            weighted_sum(acc + d, s, v + d, run, hd, 7);
            break;
        case 6:
            weighted_sum(acc + d, s, v + d, run, hd, 6);
            break;
        case 5:
            weighted_sum(acc + d, s, v + d, run, hd, 5);
            break;
        case 4:
            weighted_sum(acc + d, s, v + d, run, hd, 4);
            break;
        case 3:
            weighted_sum(acc + d, s, v + d, run, hd, 3);
            break;
        case 2:
            weighted_sum(acc + d, s, v + d, run, hd, 2);
            break;
        default:
            weighted_sum(acc + d, s, v + d, run, hd, 1);
            break;
        }
    }
}
