/*
 * test_quant_kernels.c — the quantized matmul kernels against independent references, for every
 * bit width (2, 3, 4, 5, 6, 8), group size (32, 64, 128), scale dtype and odd shapes:
 *   - the code layout: codes packed here the way mlx's quantize() packs them (a uint64 of 32/bits
 *     or 8 codes at bit k*bits, stored as a uint32 or as 3 or 5 bytes) read back by
 *     dequantize_row;
 *   - the portable and AVX2 activation quantizers give identical codes and scales;
 *   - portable and AVX2 integer kernels agree, and both match a double-precision dot product of
 *     the dequantized weights with the float activations;
 *   - op_matmul (threads, token blocks, scratch) matches the same reference;
 *   - the int8-activation path (the default): portable and AVX2 quantizers and kernels are
 *     bit-identical, a token's result does not depend on the batch it is in, and every result
 *     lies within the rounding bound of int8 activations (Σ|w|·dx/2) of the double reference;
 *   - 4- and 8-bit weights copied into interleaved order read back the same codes and scales,
 *     and every kernel on them gives the row-major kernels' bits.
 */
#include "check.h"
#include "compute/cpu/kernels.h"

static uint64_t rng = 88172645463325252ull;
static uint32_t next_u32(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float next_float(void) { /* in [-1, 1) */
    return (float)(next_u32() & 0xffffff) / (float)0x800000 - 1.0f;
}

/* Packs one row of codes as mlx/backend/cpu/quantized.cpp quantize() does. */
static void mlx_pack_row(uint8_t *out, const uint8_t *codes, int64_t cols, int bits) {
    bool pow2 = (bits & (bits - 1)) == 0;
    int per_pack = pow2 ? 32 / bits : (bits == 6 ? 4 : 8);
    int bytes_per_pack = pow2 ? 4 : (bits == 5 ? 5 : 3);
    for (int64_t p = 0; p < cols / per_pack; p++) {
        uint64_t el = 0;
        for (int k = 0; k < per_pack; k++) el |= (uint64_t)codes[p * per_pack + k] << (k * bits);
        for (int b = 0; b < bytes_per_pack; b++)
            out[p * bytes_per_pack + b] = (uint8_t)(el >> (8 * b));
    }
}

typedef struct qweight {
    weight w;
    uint8_t *codes; /* one per value, for the reference */
    void *packed, *scales, *biases;
} qweight;

static void store_scale(void *p, enum dtype dt, int64_t i, float v) {
    if (dt == DT_F16)
        ((uint16_t *)p)[i] = f32_to_f16(v);
    else if (dt == DT_BF16)
        ((uint16_t *)p)[i] = f32_to_bf16(v);
    else
        ((float *)p)[i] = v;
}

static qweight make_weight(int64_t rows, int64_t cols, int bits, int group, enum dtype sdt) {
    qweight q = {0};
    int64_t groups = cols / group;
    q.codes = xmalloc((size_t)(rows * cols));
    q.packed = xcalloc((size_t)(rows * cols * bits / 8) + 8, 1);
    q.scales = xmalloc((size_t)(rows * groups) * 4);
    q.biases = xmalloc((size_t)(rows * groups) * 4);
    for (int64_t i = 0; i < rows * cols; i++)
        q.codes[i] = (uint8_t)(next_u32() & ((1u << bits) - 1));
    for (int64_t r = 0; r < rows; r++)
        mlx_pack_row((uint8_t *)q.packed + r * cols * bits / 8, q.codes + r * cols, cols, bits);
    for (int64_t i = 0; i < rows * groups; i++) {
        store_scale(q.scales, sdt, i, 0.02f * next_float());
        store_scale(q.biases, sdt, i, 0.1f * next_float());
    }
    q.w = (weight){.dtype = DT_U32,
                   .rows = rows,
                   .cols = cols,
                   .data = q.packed,
                   .bits = bits,
                   .group_size = group,
                   .scale_dtype = sdt,
                   .scales = q.scales,
                   .biases = q.biases};
    return q;
}

static void free_weight(qweight *q) {
    free(q->codes);
    free(q->packed);
    free(q->scales);
    free(q->biases);
}

/* Reference: double dot of (scale * code + bias) with x, codes taken from the unpacked array. */
static double ref_dot(const qweight *q, int64_t r, const float *x) {
    const weight *w = &q->w;
    int64_t groups = w->cols / w->group_size;
    double acc = 0;
    for (int64_t k = 0; k < w->cols; k++) {
        int64_t g = r * groups + k / w->group_size;
        double v = (double)value_at(w->scales, w->scale_dtype, g) * q->codes[r * w->cols + k] +
                   value_at(w->biases, w->scale_dtype, g);
        acc += v * x[k];
    }
    return acc;
}

static double ref_abs_dot(const qweight *q, int64_t r, const float *x) {
    const weight *w = &q->w;
    int64_t groups = w->cols / w->group_size;
    double acc = 0;
    for (int64_t k = 0; k < w->cols; k++) {
        int64_t g = r * groups + k / w->group_size;
        double v = (double)value_at(w->scales, w->scale_dtype, g) * q->codes[r * w->cols + k] +
                   value_at(w->biases, w->scale_dtype, g);
        acc += fabs(v * x[k]);
    }
    return acc;
}

static const int all_bits[] = {2, 3, 4, 5, 6, 8};
static const int all_groups[] = {32, 64, 128};

static void test_mlx_layout_roundtrip(void) {
    for (size_t b = 0; b < ARRAY_LEN(all_bits); b++) {
        qweight q = make_weight(3, 256, all_bits[b], 32, DT_F32);
        for (int64_t r = 0; r < 3; r++)
            for (int64_t k = 0; k < 256; k++) {
                unsigned got = quant_code_at(
                    (const uint32_t *)q.packed + r * 256 * all_bits[b] / 32, k, all_bits[b]);
                if (got != q.codes[r * 256 + k]) {
                    CHECK_MSG(0, "bits %d row %lld code %lld: %u != %u", all_bits[b], (long long)r,
                              (long long)k, got, q.codes[r * 256 + k]);
                    r = 3;
                    break;
                }
            }
        free_weight(&q);
    }
}

static quant_act make_act(int n, int64_t cols, int group, int bits) {
    quant_act a = {.cols = cols, .group_size = group, .groups = (int)(cols / group), .bits = bits};
    a.q = xmalloc((size_t)(n * cols) * sizeof(int16_t));
    a.dxv = xmalloc((size_t)n * (size_t)a.groups * 8 * sizeof(float));
    a.xs = xmalloc((size_t)n * (size_t)a.groups * sizeof(float));
    a.dx = xmalloc((size_t)n * (size_t)a.groups * sizeof(float));
    return a;
}

static void free_act(quant_act *a) {
    free(a->q);
    free(a->dxv);
    free(a->xs);
    free(a->dx);
}

static bool have_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c") && __builtin_cpu_supports("bmi2");
}

static bool have_avx512(void) {
    return have_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

static bool have_avxvnni(void) {
    return have_avx2() && __builtin_cpu_supports("avxvnni");
}

static void one_case(int bits, int group, enum dtype sdt, int64_t rows, int64_t cols, int n) {
    qweight q = make_weight(rows, cols, bits, group, sdt);
    float *x = xmalloc((size_t)(n * cols) * sizeof(float));
    for (int64_t i = 0; i < n * cols; i++) x[i] = next_float() * (i % 17 == 0 ? 8.0f : 1.0f);
    quant_act ap = make_act(n, cols, group, bits), av = make_act(n, cols, group, bits);
    quantize_act_portable(&ap, x, 0, n);
    float *yp = xmalloc((size_t)(n * rows) * sizeof(float)),
          *yv = xmalloc((size_t)(n * rows) * sizeof(float));
    float *ym = xmalloc((size_t)(n * rows) * sizeof(float));
    float *y5 = xmalloc((size_t)(n * rows) * sizeof(float));
    bool avx512 = have_avx512();
    if (avx512) quant_rows_avx512(y5, rows, &ap, 0, n, &q.w, 0, rows);
    quant_rows_portable(yp, rows, &ap, 0, n, &q.w, 0, rows);
    bool avx2 = have_avx2();
    if (avx2) {
        quantize_act_avx2(&av, x, 0, n);
        CHECK_MSG(!memcmp(ap.q, av.q, (size_t)(n * cols) * sizeof(int16_t)),
                  "bits %d group %d: AVX2 and portable activation codes differ", bits, group);
        CHECK_MSG(!memcmp(ap.dxv, av.dxv, (size_t)n * (size_t)ap.groups * 8 * sizeof(float)) &&
                      !memcmp(ap.xs, av.xs, (size_t)n * (size_t)ap.groups * sizeof(float)),
                  "bits %d group %d: AVX2 and portable activation scales differ", bits, group);
        quant_rows_avx2(yv, rows, &ap, 0, n, &q.w, 0, rows);
    }
    thread_pool *pool = pool_create(2);
    op_matmul(pool, ym, x, n, &q.w);
    pool_destroy(pool);
    double worst_ref = 0, worst_var = 0, worst_mm = 0, worst_512 = 0;
    for (int t = 0; t < n; t++)
        for (int64_t r = 0; r < rows; r++) {
            double want = ref_dot(&q, r, x + t * cols),
                   mag = ref_abs_dot(&q, r, x + t * cols) + 1e-30;
            double e = fabs(yp[t * rows + r] - want) / mag;
            if (e > worst_ref) worst_ref = e;
            double m = fabs(ym[t * rows + r] - want) / mag;
            if (m > worst_mm) worst_mm = m;
            if (avx2) {
                double v = fabs(yv[t * rows + r] - yp[t * rows + r]) / mag;
                if (v > worst_var) worst_var = v;
            }
            if (avx512) {
                double v = fabs(y5[t * rows + r] - yp[t * rows + r]) / mag;
                if (v > worst_512) worst_512 = v;
            }
        }
    /* int16 activations: each value within 1/65534 of its group's max; relative to sum |w·x|. */
    CHECK_MSG(worst_ref < 1e-4, "bits %d group %d %s %lldx%lld n=%d: portable vs reference %.3g",
              bits, group, dtype_name(sdt), (long long)rows, (long long)cols, n, worst_ref);
    CHECK_MSG(worst_var < 1e-6, "bits %d group %d %s %lldx%lld n=%d: AVX2 vs portable %.3g", bits,
              group, dtype_name(sdt), (long long)rows, (long long)cols, n, worst_var);
    CHECK_MSG(worst_512 < 1e-6, "bits %d group %d %s %lldx%lld n=%d: AVX-512 vs portable %.3g",
              bits, group, dtype_name(sdt), (long long)rows, (long long)cols, n, worst_512);
    CHECK_MSG(worst_mm < 1e-4, "bits %d group %d %s %lldx%lld n=%d: op_matmul vs reference %.3g",
              bits, group, dtype_name(sdt), (long long)rows, (long long)cols, n, worst_mm);
    free(x);
    free(yp);
    free(yv);
    free(ym);
    free(y5);
    free_act(&ap);
    free_act(&av);
    free_weight(&q);
}

static quant_act8 make_act8(int n, int64_t cols, int group, bool q4) {
    quant_act8 a = {.cols = cols,
                    .n = n,
                    .group_size = group,
                    .groups = (int)(cols / group),
                    .blocks = (int)(cols / QUANT8_BLOCK)};
    a.q = xmalloc((size_t)(n * cols));
    a.q4 = q4 ? xmalloc((size_t)cols) : NULL;
    a.dx = xmalloc((size_t)n * (size_t)a.blocks * sizeof(float));
    a.csum = xmalloc((size_t)n * (size_t)a.blocks * sizeof(int32_t));
    a.xs = xmalloc((size_t)n * (size_t)a.groups * sizeof(float));
    return a;
}

static void free_act8(quant_act8 *a) {
    free(a->q);
    free(a->q4);
    free(a->dx);
    free(a->csum);
    free(a->xs);
}

/* Rounding bound of int8 activations for row r: each x within dx/2 of its code's value. */
static double int8_bound(const qweight *q, int64_t r, const float *x) {
    const weight *w = &q->w;
    int64_t groups = w->cols / w->group_size;
    double bound = 0;
    for (int64_t b = 0; b < w->cols / QUANT8_BLOCK; b++) {
        double max = 0, wsum = 0;
        for (int64_t k = b * QUANT8_BLOCK; k < (b + 1) * QUANT8_BLOCK; k++) {
            int64_t g = r * groups + k / w->group_size;
            max = fmax(max, fabs(x[k]));
            wsum +=
                fabs((double)value_at(w->scales, w->scale_dtype, g) * q->codes[r * w->cols + k] +
                     value_at(w->biases, w->scale_dtype, g));
        }
        bound += wsum * max / 254.0;
    }
    return bound * 1.001 + 1e-6 * ref_abs_dot(q, r, x);
}

static void one_case8(int bits, int group, enum dtype sdt, int64_t rows, int64_t cols, int n) {
    qweight q = make_weight(rows, cols, bits, group, sdt);
    float *x = xmalloc((size_t)(n * cols) * sizeof(float));
    for (int64_t i = 0; i < n * cols; i++) x[i] = next_float() * (i % 17 == 0 ? 8.0f : 1.0f);
    size_t ysize = (size_t)(n * rows) * sizeof(float);
    float *yp = xmalloc(ysize), *yv = xmalloc(ysize), *ym = xmalloc(ysize), *y1 = xmalloc(ysize);
    quant_act8 ap = make_act8(n, cols, group, false), av = make_act8(n, cols, group, false);
    quantize_act8_portable(&ap, x, 0, n);
    quant8_rows_portable(yp, rows, &ap, &q.w, 0, rows);
    const char *what = "";
    bool same = true;
    if (have_avx2()) {
        quantize_act8_avx2(&av, x, 0, n);
        size_t nb = (size_t)n * (size_t)ap.blocks;
        CHECK_MSG(!memcmp(ap.q, av.q, (size_t)(n * cols)) &&
                      !memcmp(ap.dx, av.dx, nb * sizeof(float)) &&
                      !memcmp(ap.csum, av.csum, nb * sizeof(int32_t)) &&
                      !memcmp(ap.xs, av.xs, (size_t)n * (size_t)ap.groups * sizeof(float)),
                  "bits %d group %d: AVX2 and portable int8 activations differ", bits, group);
        /* rows split at a multiple of 8 as op_matmul's tasks are */
        quant8_rows_avx2(yv, rows, &ap, &q.w, 0, rows > 8 ? 8 : rows);
        if (rows > 8) quant8_rows_avx2(yv, rows, &ap, &q.w, 8, rows);
        if (memcmp(yp, yv, ysize)) same = false, what = "AVX2 rows";
        if (have_avx512()) {
            memset(yv, 0, ysize);
            quant8_rows_avx512(yv, rows, &ap, &q.w, 0, rows);
            if (same && memcmp(yp, yv, ysize)) same = false, what = "AVX-512 rows";
        }
        if (have_avxvnni()) {
            memset(yv, 0, ysize);
            quant8_rows_avxvnni(yv, rows, &ap, &q.w, 0, rows);
            if (same && memcmp(yp, yv, ysize)) same = false, what = "AVX-VNNI rows";
        }
        /* each token alone (the decode kernel) gives what it gave in the batch */
        for (int t = 0; t < n && same; t++) {
            quant_act8 one = make_act8(1, cols, group, bits == 4);
            quantize_act8_avx2(&one, x + t * cols, 0, 1);
            quant8_rows_avx2(y1 + t * rows, rows, &one, &q.w, 0, rows);
            if (memcmp(y1 + t * rows, yp + t * rows, (size_t)rows * sizeof(float)))
                same = false, what = "one token alone";
            if (same && have_avxvnni()) {
                quant8_rows_avxvnni(y1 + t * rows, rows, &one, &q.w, 0, rows);
                if (memcmp(y1 + t * rows, yp + t * rows, (size_t)rows * sizeof(float)))
                    same = false, what = "one token alone (AVX-VNNI)";
            }
            free_act8(&one);
        }
    }
    thread_pool *pool = pool_create(2);
    op_matmul(pool, ym, x, n, &q.w);
    pool_destroy(pool);
    if (same && memcmp(ym, yp, ysize)) same = false, what = "op_matmul";
    CHECK_MSG(same, "bits %d group %d %s %lldx%lld n=%d: %s differs from the portable int8 kernel",
              bits, group, dtype_name(sdt), (long long)rows, (long long)cols, n, what);
    double worst = 0;
    for (int t = 0; t < n; t++)
        for (int64_t r = 0; r < rows; r++) {
            double e = fabs(yp[t * rows + r] - ref_dot(&q, r, x + t * cols)) /
                       int8_bound(&q, r, x + t * cols);
            if (e > worst) worst = e;
        }
    CHECK_MSG(worst <= 1, "bits %d group %d %s %lldx%lld n=%d: int8 error %.3g of its bound", bits,
              group, dtype_name(sdt), (long long)rows, (long long)cols, n, worst);
    free(x);
    free(yp);
    free(yv);
    free(ym);
    free(y1);
    free_act8(&ap);
    free_act8(&av);
    free_weight(&q);
}

/* Blocks of zeros, tiny values (127/max would overflow), huge values, Inf and NaN: both
 * quantizers agree; tiny blocks count as zero, non-finite ones make their rows NaN, others stay
 * finite and within the int8 bound. Then codes at their extremes against activations at ±127
 * (the int16 pair sums' worst case) for every width. */
static void test_int8_edge_activations(void) {
    const int64_t cols = 256; /* 8 blocks */
    const float specials[8] = {0, 1e-38f, 1e30f, INFINITY, NAN, -1e-37f, 3e-31f, 1.0f};
    for (int bits = 4; bits <= 8; bits += 4) {
        qweight q = make_weight(16, cols, bits, 32, DT_F16);
        float x[2 * 256];
        for (int i = 0; i < 2 * 256; i++) x[i] = next_float();
        for (int k = 0; k < 8; k++) x[k * 32 + 5] = specials[k]; /* token 0: one per block */
        for (int i = 32; i < 64; i++) x[i] = (i & 1) ? 1e-38f : -2e-38f; /* block 1 all tiny */
        quant_act8 ap = make_act8(2, cols, 32, false), av = make_act8(2, cols, 32, false);
        quantize_act8_portable(&ap, x, 0, 2);
        float yp[32], yv[32], ym[32];
        quant8_rows_portable(yp, 16, &ap, &q.w, 0, 16);
        bool nan_rows = true, finite_rows = true;
        for (int r = 0; r < 16; r++) {
            nan_rows &= isnan(yp[r]);            /* token 0 holds an Inf and a NaN */
            finite_rows &= isfinite(yp[16 + r]); /* token 1 is ordinary */
        }
        CHECK_MSG(nan_rows && finite_rows, "bits %d: Inf/NaN blocks give NaN rows, others finite",
                  bits);
        CHECK(ap.dx[act8_at(&ap, 0, 1)] == 0 && isnan(ap.dx[act8_at(&ap, 0, 3)]) &&
              isnan(ap.dx[act8_at(&ap, 0, 4)]));
        if (have_avx2()) {
            quantize_act8_avx2(&av, x, 0, 2);
            bool same = !memcmp(ap.q, av.q, 2 * cols) && !memcmp(ap.csum, av.csum, 2 * 8 * 4);
            for (int i = 0; i < 16; i++)
                same &= (isnan(ap.dx[i]) && isnan(av.dx[i])) || ap.dx[i] == av.dx[i];
            CHECK_MSG(same, "bits %d: AVX2 and portable quantize edge blocks alike", bits);
            quant8_rows_avx2(yv, 16, &ap, &q.w, 0, 16);
            bool rows_same = true;
            for (int i = 0; i < 32; i++)
                rows_same &= (isnan(yp[i]) && isnan(yv[i])) || !memcmp(&yp[i], &yv[i], 4);
            CHECK_MSG(rows_same, "bits %d: AVX2 rows = portable on edge activations", bits);
        }
        compute_set_activation_bits(8);
        op_matmul(NULL, ym, x, 2, &q.w);
        compute_set_activation_bits(16);
        bool mm_same = true;
        for (int i = 0; i < 32; i++)
            mm_same &= (isnan(yp[i]) && isnan(ym[i])) || !memcmp(&yp[i], &ym[i], 4);
        CHECK_MSG(mm_same, "bits %d: op_matmul = portable on edge activations", bits);
        free_act8(&ap);
        free_act8(&av);
        free_weight(&q);
    }
    /* worst case for the int16 sums: every code at its maximum (or 0 for 8-bit's q - 128 =
     * -128), activations at ±127 in runs of equal sign */
    for (size_t bi = 0; bi < ARRAY_LEN(all_bits); bi++) {
        int bits = all_bits[bi];
        for (int lo = 0; lo < 2; lo++) {
            qweight q = make_weight(16, 128, bits, 64, DT_F32);
            for (int64_t i = 0; i < 16 * 128; i++)
                q.codes[i] = lo ? 0 : (uint8_t)((1u << bits) - 1);
            for (int64_t r = 0; r < 16; r++)
                mlx_pack_row((uint8_t *)q.packed + r * 128 * bits / 8, q.codes + r * 128, 128,
                             bits);
            float x[4 * 128];
            for (int i = 0; i < 3 * 128; i++) x[i] = (i / 128 == 1 ? -1.0f : 1.0f) * (i % 5 + 1);
            for (int i = 0; i < 128; i++) /* all codes ±127 */
                x[256 + i] = (i / 16) % 2 ? -3.0f : 3.0f;
            for (int i = 0; i < 128; i++) /* all codes 127: the 4-bit decode's int16 sums */
                x[384 + i] = 3.0f;
            quant_act8 a = make_act8(4, 128, 64, false);
            quantize_act8_portable(&a, x, 0, 4);
            float yp[64], yv[64];
            quant8_rows_portable(yp, 16, &a, &q.w, 0, 16);
            if (have_avx2()) {
                quant8_rows_avx2(yv, 16, &a, &q.w, 0, 16);
                CHECK_MSG(!memcmp(yp, yv, sizeof yp), "bits %d codes %s: saturating case", bits,
                          lo ? "0" : "max");
                for (int t = 0; t < 4; t++) { /* one token alone: the decode kernel */
                    quant_act8 one = make_act8(1, 128, 64, bits == 4);
                    quantize_act8_avx2(&one, x + t * 128, 0, 1);
                    quant8_rows_avx2(yv, 16, &one, &q.w, 0, 16);
                    CHECK_MSG(!memcmp(yp + t * 16, yv, 16 * sizeof(float)),
                              "bits %d codes %s token %d alone: saturating case", bits,
                              lo ? "0" : "max", t);
                    free_act8(&one);
                }
            }
            double worst = 0;
            for (int t = 0; t < 4; t++)
                for (int r = 0; r < 16; r++) {
                    double e = fabs(yp[t * 16 + r] - ref_dot(&q, r, x + t * 128)) /
                               int8_bound(&q, r, x + t * 128);
                    if (e > worst) worst = e;
                }
            CHECK_MSG(worst <= 1, "bits %d codes %s: error %.3g of the int8 bound", bits,
                      lo ? "0" : "max", worst);
            free_act8(&a);
            free_weight(&q);
        }
    }
}

static void test_int8_every_bits_and_group(void) {
    const enum dtype sdts[] = {DT_F16, DT_BF16, DT_F32};
    compute_set_activation_bits(8);
    int i = 0;
    for (size_t b = 0; b < ARRAY_LEN(all_bits); b++)
        for (size_t g = 0; g < ARRAY_LEN(all_groups); g++, i++) {
            int group = all_groups[g];
            /* rows not a multiple of 8; 1, 5, 7 and 13 tokens (pairs of tokens plus one);
             * 8+ groups (the scales' 8 × 8 transpose) and fewer */
            one_case8(all_bits[b], group, sdts[i % 3], 37, group * 3, 1);
            one_case8(all_bits[b], group, sdts[(i + 1) % 3], 21, group * 9, 5);
            one_case8(all_bits[b], group, sdts[(i + 2) % 3], 9, 1152, 7);
            one_case8(all_bits[b], group, DT_F16, 16, group * 16, 13);
            one_case8(all_bits[b], group, DT_F16, 8, group * 8, 1);
        }
    /* long rows: more groups than one chunk of scales, 1 and 3 tokens */
    one_case8(4, 64, DT_F16, 24, 4096, 1);
    one_case8(4, 128, DT_BF16, 16, 2560, 3);
    compute_set_activation_bits(16);
}

static void test_every_bits_and_group(void) {
    const enum dtype sdts[] = {DT_F16, DT_BF16, DT_F32};
    int i = 0;
    for (size_t b = 0; b < ARRAY_LEN(all_bits); b++)
        for (size_t g = 0; g < ARRAY_LEN(all_groups); g++, i++) {
            int group = all_groups[g];
            /* odd numbers of rows and groups; 1, 5 and 7 tokens (tiles of 4 plus remainders) */
            one_case(all_bits[b], group, sdts[i % 3], 37, group * 3, 1);
            one_case(all_bits[b], group, sdts[(i + 1) % 3], 21, group * 5, 5);
            one_case(all_bits[b], group, sdts[(i + 2) % 3], 9, 1152, 7);
        }
}

static void test_many_tokens_and_slices(void) {
    /* more columns than one slice of the AVX2 kernel, more tokens than one tile */
    one_case(4, 64, DT_F16, 70, 2560, 13);
    one_case(8, 128, DT_BF16, 33, 2304, 9);
}

static void test_zero_and_huge_activations(void) {
    qweight q = make_weight(8, 128, 4, 64, DT_F16);
    float x[2 * 128] = {0};
    x[128 + 5] = 1e30f; /* one huge value: its group scales to it, no overflow */
    float y[16];
    op_matmul(NULL, y, x, 2, &q.w);
    bool finite = true;
    for (int i = 0; i < 16; i++) finite &= isfinite(y[i]);
    CHECK(finite);
    for (int r = 0; r < 8; r++) CHECK(y[r] == 0.0f);
    free_weight(&q);
}

/* op_matmul_fused over quantized weights of mixed widths and heights (one quantization of x,
 * one parallel pass) gives exactly what each weight gives alone, for one token and several;
 * weights of another group size are run apart. */
static void test_fused_quantized(void) {
    compute_set_activation_bits(8);
    thread_pool *pool = pool_create(2);
    const int64_t cols = 512;
    qweight q[3] = {make_weight(40, cols, 4, 64, DT_BF16), make_weight(16, cols, 8, 64, DT_BF16),
                    make_weight(24, cols, 4, 64, DT_F16)};
    for (int other_group = 0; other_group < 2; other_group++) {
        if (other_group) {
            free_weight(&q[2]);
            q[2] = make_weight(24, cols, 4, 32, DT_F16);
        }
        for (int n = 1; n <= 6; n += 5) {
            float *x = xmalloc((size_t)(n * cols) * sizeof(float));
            for (int64_t i = 0; i < n * cols; i++) x[i] = next_float();
            float *fused[3], *alone[3];
            for (int k = 0; k < 3; k++) {
                fused[k] = xcalloc((size_t)(n * q[k].w.rows), sizeof(float));
                alone[k] = xcalloc((size_t)(n * q[k].w.rows), sizeof(float));
                op_matmul(pool, alone[k], x, n, &q[k].w);
            }
            op_matmul_fused(pool, fused, x, n, (const weight *[]){&q[0].w, &q[1].w, &q[2].w}, 3);
            for (int k = 0; k < 3; k++) {
                CHECK_MSG(!memcmp(fused[k], alone[k], (size_t)(n * q[k].w.rows) * sizeof(float)),
                          "fused weight %d (group %d), %d tokens: = alone", k, q[k].w.group_size,
                          n);
                free(fused[k]);
                free(alone[k]);
            }
            free(x);
        }
    }
    for (int k = 0; k < 3; k++) free_weight(&q[k]);
    pool_destroy(pool);
    compute_set_activation_bits(16);
}

/* Interleaved order (compute.h): the copy reads back every code, scale and bias of the
 * row-major weight, and every kernel on it (portable, AVX2, AVX-512, AVX-VNNI; one token and
 * batches; op_matmul on threads) gives the row-major portable kernel's bits. */
static void one_interleaved(int bits, int group, enum dtype sdt, int64_t rows, int64_t cols,
                            int n) {
    qweight q = make_weight(rows, cols, bits, group, sdt);
    weight il = q.w;
    CHECK(weight_can_interleave(&il));
    void *buf = weight_interleave(&il, NULL);
    CHECK(buf && il.interleaved && !weight_can_interleave(&il));
    CHECK(weight_bytes(&il) == weight_bytes(&q.w));
    bool codes_ok = true, scales_ok = true;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t k = 0; k < cols; k++)
            codes_ok &= quant_code(&il, r, k) == q.codes[r * cols + k];
        for (int64_t g = 0; g < cols / group; g++)
            scales_ok &= quant_scale(&il, r, g) == quant_scale(&q.w, r, g) &&
                         quant_bias(&il, r, g) == quant_bias(&q.w, r, g);
    }
    CHECK_MSG(codes_ok && scales_ok, "bits %d group %d: interleaved codes %s, scales %s", bits,
              group, codes_ok ? "ok" : "differ", scales_ok ? "ok" : "differ");
    float *x = xmalloc((size_t)(n * cols) * sizeof(float));
    for (int64_t i = 0; i < n * cols; i++) x[i] = next_float() * (i % 13 == 0 ? 8.0f : 1.0f);
    size_t ysize = (size_t)(n * rows) * sizeof(float);
    float *yp = xmalloc(ysize), *yi = xmalloc(ysize);
    quant_act8 a = make_act8(n, cols, group, false);
    quantize_act8_portable(&a, x, 0, n);
    quant8_rows_portable(yp, rows, &a, &q.w, 0, rows);
    const char *what = "";
    bool same = true;
    quant8_rows_portable(yi, rows, &a, &il, 0, rows);
    if (memcmp(yp, yi, ysize)) same = false, what = "portable";
    if (have_avx2()) {
        memset(yi, 0, ysize);
        quant8_rows_avx2(yi, rows, &a, &il, 0, 8); /* split as op_matmul's tasks are */
        quant8_rows_avx2(yi, rows, &a, &il, 8, rows);
        if (same && memcmp(yp, yi, ysize)) same = false, what = "AVX2";
        if (have_avx512()) {
            memset(yi, 0, ysize);
            quant8_rows_avx512(yi, rows, &a, &il, 0, rows);
            if (same && memcmp(yp, yi, ysize)) same = false, what = "AVX-512";
        }
        if (have_avxvnni()) {
            memset(yi, 0, ysize);
            quant8_rows_avxvnni(yi, rows, &a, &il, 0, rows);
            if (same && memcmp(yp, yi, ysize)) same = false, what = "AVX-VNNI";
        }
        for (int t = 0; t < n && same; t++) { /* the decode kernel */
            quant_act8 one = make_act8(1, cols, group, false);
            quantize_act8_avx2(&one, x + t * cols, 0, 1);
            quant8_rows_avx2(yi, rows, &one, &il, 0, rows);
            if (memcmp(yi, yp + t * rows, (size_t)rows * sizeof(float)))
                same = false, what = "one token (AVX2)";
            free_act8(&one);
        }
    }
    thread_pool *pool = pool_create(2);
    memset(yi, 0, ysize);
    op_matmul(pool, yi, x, n, &il);
    pool_destroy(pool);
    if (same && memcmp(yp, yi, ysize)) same = false, what = "op_matmul";
    CHECK_MSG(same, "bits %d group %d %s %lldx%lld n=%d: interleaved %s differs from row-major",
              bits, group, dtype_name(sdt), (long long)rows, (long long)cols, n, what);
    float *d0 = xmalloc((size_t)cols * sizeof(float)), *d1 = xmalloc((size_t)cols * sizeof(float));
    op_embedding(d0, &q.w, rows - 1);
    op_embedding(d1, &il, rows - 1);
    CHECK_MSG(!memcmp(d0, d1, (size_t)cols * sizeof(float)), "bits %d group %d: embedding row",
              bits, group);
    free(d0);
    free(d1);
    free(x);
    free(yp);
    free(yi);
    free_act8(&a);
    free(buf);
    free_weight(&q);
}

static void test_interleaved(void) {
    const int bits[] = {4, 8};
    compute_set_activation_bits(8);
    for (size_t b = 0; b < ARRAY_LEN(bits); b++)
        for (size_t g = 0; g < ARRAY_LEN(all_groups); g++) {
            int group = all_groups[g];
            one_interleaved(bits[b], group, DT_F16, 16, group * 3, 1);
            one_interleaved(bits[b], group, DT_BF16, 24, group * 9, 5);
            one_interleaved(bits[b], group, g % 2 ? DT_F16 : DT_BF16, 32, 1152 / group * group, 17);
        }
    /* what stays row-major: other widths, partial tiles, f32 scales */
    qweight q3 = make_weight(16, 64, 3, 64, DT_F16), q12 = make_weight(12, 64, 4, 64, DT_F16),
            qf = make_weight(16, 64, 4, 64, DT_F32);
    CHECK(!weight_can_interleave(&q3.w) && !weight_can_interleave(&q12.w) &&
          !weight_can_interleave(&qf.w));
    free_weight(&q3);
    free_weight(&q12);
    free_weight(&qf);
    compute_set_activation_bits(16);
}

int main(void) {
    if (!have_avx512())
        printf("# no AVX512-VNNI on this CPU: the AVX-512 tiles are not compared\n");
    if (!have_avxvnni()) printf("# no AVX-VNNI on this CPU: the AVX-VNNI tiles are not compared\n");
    compute_set_activation_bits(16); /* op_matmul's int16 path, until the int8 tests */
    RUN(test_mlx_layout_roundtrip);
    RUN(test_every_bits_and_group);
    RUN(test_many_tokens_and_slices);
    RUN(test_zero_and_huge_activations);
    RUN(test_int8_every_bits_and_group);
    RUN(test_int8_edge_activations);
    RUN(test_fused_quantized);
    RUN(test_interleaved);
    return CHECK_DONE();
}
