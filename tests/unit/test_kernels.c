/*
 * test_kernels.c — the dense matmul kernels (portable, AVX2 and AVX-512, called through their
 * tables) against a double-precision reference computed here from the stored weight values:
 * F32, F16 and BF16 weights in panel order, odd sizes (partial 16-row panels), 1..7 tokens and
 * more (every tile width and tail), row sub-ranges, and op_matmul through a thread pool. A
 * result may differ from the exact sum only by float rounding: the bound is the classical
 * n·eps·Σ|w·x| of a length-n float sum. Beyond that, every variant, batch size and thread split
 * must give the portable kernel's bits exactly (one fma chain over k, compute.h).
 */
#include "check.h"
#include "compute/cpu/kernels.h"

/* A random weight of dtype dt; *exact receives its stored values as doubles. */
static void *random_weight(enum dtype dt, int64_t rows, int64_t cols, double *exact) {
    size_t n = (size_t)(rows * cols);
    void *data = xmalloc(n * dtype_size(dt) + 1);
    for (size_t i = 0; i < n; i++) {
        float v = check_urand();
        if (dt == DT_F32) {
            ((float *)data)[i] = v;
            exact[i] = v;
        } else if (dt == DT_F16) {
            ((uint16_t *)data)[i] = f32_to_f16(v);
            exact[i] = f16_to_f32(((uint16_t *)data)[i]);
        } else {
            ((uint16_t *)data)[i] = f32_to_bf16(v);
            exact[i] = bf16_to_f32(((uint16_t *)data)[i]);
        }
    }
    return data;
}

/* The same in panel order, as models load it. */
static weight random_panels(enum dtype dt, int64_t rows, int64_t cols, double *exact) {
    weight w = {.dtype = dt, .rows = rows, .cols = cols};
    void *rowmajor = random_weight(dt, rows, cols, exact);
    w.data = rowmajor;
    if (!weight_to_panels(&w, NULL)) abort();
    free(rowmajor);
    return w;
}

#define SENTINEL 12345.0f

/* Runs kernel k on rows [r0, r1) for n tokens and compares with the double reference;
 * entries outside the row range must stay untouched. Returns the number of mismatches. */
static int compare(const cpu_kernels *k, enum dtype dt, int64_t rows, int64_t cols, int n,
                   int64_t r0, int64_t r1) {
    double *exact = xmalloc((size_t)(rows * cols) * sizeof(double));
    weight w = random_panels(dt, rows, cols, exact);
    float *x = xmalloc((size_t)(n * cols) * sizeof(float));
    for (int64_t i = 0; i < n * cols; i++) x[i] = check_urand();
    const int64_t ldy = rows + 3;
    float *y = xmalloc((size_t)(n * ldy) * sizeof(float));
    for (int64_t i = 0; i < n * ldy; i++) y[i] = SENTINEL;
    k->dense_rows(y, ldy, x, n, &w, r0, r1);
    int bad = 0;
    for (int t = 0; t < n; t++)
        for (int64_t r = 0; r < ldy; r++) {
            float got = y[t * ldy + r];
            if (r < r0 || r >= r1) {
                if (got != SENTINEL && bad++ < 3)
                    printf("    %s %s: wrote outside rows [%lld, %lld) at t=%d r=%lld\n", k->name,
                           dtype_name(dt), (long long)r0, (long long)r1, t, (long long)r);
                continue;
            }
            double ref = 0, mag = 0;
            for (int64_t c = 0; c < cols; c++) {
                ref += exact[r * cols + c] * (double)x[t * cols + c];
                mag += fabs(exact[r * cols + c] * (double)x[t * cols + c]);
            }
            double tol = (double)(cols + 2) * 1.2e-7 * mag + 1e-30;
            if (!(fabs((double)got - ref) <= tol) && bad++ < 3)
                printf("    %s %s rows=%lld cols=%lld n=%d: y[%d][%lld] = %.9g, expected %.9g\n",
                       k->name, dtype_name(dt), (long long)rows, (long long)cols, n, t,
                       (long long)r, (double)got, ref);
        }
    free((void *)w.data);
    free(exact);
    free(x);
    free(y);
    return bad;
}

static const enum dtype dtypes[] = {DT_F32, DT_F16, DT_BF16};

static void sweep(const cpu_kernels *k) {
    static const int64_t shapes[][2] = {{1, 1},   {3, 7},   {5, 8},    {4, 33},  {17, 31},
                                        {16, 64}, {9, 100}, {33, 257}, {20, 520}};
    int bad = 0;
    for (size_t d = 0; d < ARRAY_LEN(dtypes); d++)
        for (size_t s = 0; s < ARRAY_LEN(shapes); s++) {
            for (int n = 1; n <= 7; n++)
                bad += compare(k, dtypes[d], shapes[s][0], shapes[s][1], n, 0, shapes[s][0]);
            bad += compare(k, dtypes[d], shapes[s][0], shapes[s][1], 13, 0, shapes[s][0]);
        }
    /* wide rows; pairs of whole panels (decode) with a partial one after */
    for (size_t d = 0; d < ARRAY_LEN(dtypes); d++) {
        bad += compare(k, dtypes[d], 37, 1100, 16, 0, 37);
        bad += compare(k, dtypes[d], 70, 2048, 1, 0, 70);
    }
    CHECK_MSG(bad == 0, "%s: %d mismatches", k->name, bad);
}

static void sub_ranges(const cpu_kernels *k) {
    int bad = 0;
    for (size_t d = 0; d < ARRAY_LEN(dtypes); d++) {
        bad += compare(k, dtypes[d], 40, 72, 1, 0, 29);
        bad += compare(k, dtypes[d], 40, 72, 2, 16, 40);
        bad += compare(k, dtypes[d], 40, 72, 11, 16, 38);
        bad += compare(k, dtypes[d], 40, 72, 20, 16, 32);
        bad += compare(k, dtypes[d], 80, 72, 1, 16, 80);
    }
    CHECK_MSG(bad == 0, "%s: %d mismatches", k->name, bad);
}

static bool has_avx2(void);

static void portable_dense(void) {
    sweep(&cpu_kernels_portable);
    sub_ranges(&cpu_kernels_portable);
}

static bool has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c");
}

static void avx2_dense(void) {
    if (!has_avx2()) {
        printf("# avx2_dense: no AVX2 on this CPU, nothing to compare\n");
        return;
    }
    sweep(&cpu_kernels_avx2);
    sub_ranges(&cpu_kernels_avx2);
}

/* The table dispatch chose, when it is the AVX-512 one (on CPUs that have it). */
static void avx512_dense(void) {
    const cpu_kernels *k = cpu_kernels_get();
    if (strcmp(k->name, "avx512") != 0) {
        printf("# avx512_dense: this CPU runs \"%s\", nothing to compare\n", k->name);
        return;
    }
    sweep(k);
    sub_ranges(k);
    int bad = 0; /* pairs of panels, 12-token tiles and their tails */
    for (size_t d = 0; d < ARRAY_LEN(dtypes); d++)
        for (int n = 6; n <= 30; n += 3) bad += compare(k, dtypes[d], 75, 40, n, 0, 75);
    CHECK_MSG(bad == 0, "%d mismatches", bad);
}

/* Kernel k on rows [0, rows) of w for n tokens into a fresh y (the caller frees it). */
static float *run_rows(const cpu_kernels *k, const weight *w, const float *x, int n) {
    float *y = xmalloc((size_t)(n * w->rows) * sizeof(float));
    k->dense_rows(y, w->rows, x, n, w, 0, w->rows);
    return y;
}

/* The numerics contract: each table, each batch size, each token's place in the batch and
 * op_matmul's thread split give the portable kernel's bits. */
static void bit_identical(void) {
    const cpu_kernels *tables[] = {has_avx2() ? &cpu_kernels_avx2 : NULL, cpu_kernels_get()};
    static const int64_t shapes[][2] = {{37, 45}, {64, 130}, {203, 136}};
    static const int tokens[] = {1, 2, 3, 5, 6, 7, 12, 13, 16, 17, 25, 40};
    thread_pool *pool = pool_create(3);
    int bad = 0;
    for (size_t d = 0; d < ARRAY_LEN(dtypes); d++)
        for (size_t s = 0; s < ARRAY_LEN(shapes); s++) {
            const int64_t rows = shapes[s][0], cols = shapes[s][1];
            double *exact = xmalloc((size_t)(rows * cols) * sizeof(double));
            weight w = random_panels(dtypes[d], rows, cols, exact);
            float *x = xmalloc((size_t)(40 * cols) * sizeof(float));
            for (int64_t i = 0; i < 40 * cols; i++) x[i] = check_urand();
            float *alone = run_rows(&cpu_kernels_portable, &w, x, 40); /* token t at row t */
            for (int t = 0; t < 40; t++) { /* each token alone, at every position */
                float *one = run_rows(&cpu_kernels_portable, &w, x + t * cols, 1);
                bad += memcmp(one, alone + t * rows, (size_t)rows * sizeof(float)) != 0;
                free(one);
            }
            for (size_t ti = 0; ti < ARRAY_LEN(tokens); ti++) {
                const int n = tokens[ti];
                for (size_t k = 0; k < ARRAY_LEN(tables); k++) {
                    if (!tables[k]) continue;
                    float *y = run_rows(tables[k], &w, x, n);
                    if (memcmp(y, alone, (size_t)(n * rows) * sizeof(float)) && bad++ < 3)
                        printf("    %s %s %lldx%lld n=%d differs from portable\n", tables[k]->name,
                               dtype_name(dtypes[d]), (long long)rows, (long long)cols, n);
                    free(y);
                }
                float *y = xmalloc((size_t)(n * rows) * sizeof(float));
                op_matmul(pool, y, x, n, &w);
                if (memcmp(y, alone, (size_t)(n * rows) * sizeof(float)) && bad++ < 3)
                    printf("    op_matmul %s n=%d differs from portable\n", dtype_name(dtypes[d]),
                           n);
                free(y);
            }
            free((void *)w.data), free(exact), free(x), free(alone);
        }
    CHECK_MSG(bad == 0, "%d differences", bad);
    pool_destroy(pool);
}

/* Panel order keeps every value: weight_dense_at and op_embedding read rows back exactly. */
static void panels_round_trip(void) {
    for (size_t d = 0; d < ARRAY_LEN(dtypes); d++) {
        const int64_t rows = 35, cols = 19;
        double *exact = xmalloc((size_t)(rows * cols) * sizeof(double));
        weight w = random_panels(dtypes[d], rows, cols, exact);
        float row[19];
        int bad = 0;
        for (int64_t r = 0; r < rows; r++) {
            op_embedding(row, &w, r);
            for (int64_t k = 0; k < cols; k++)
                bad += row[k] != exact[r * cols + k] || weight_dense_at(&w, r, k) != row[k];
        }
        /* the padding rows of the last panel are zero */
        const size_t es = dtype_size(w.dtype);
        const uint8_t *last = (const uint8_t *)w.data + (size_t)(2 * cols * WEIGHT_PANEL) * es;
        for (int64_t k = 0; k < cols; k++)
            for (int i = (int)(rows % WEIGHT_PANEL); i < WEIGHT_PANEL; i++)
                for (size_t b = 0; b < es; b++)
                    bad +=
                        last[((size_t)(k * WEIGHT_PANEL + panel_slot(w.dtype, i))) * es + b] != 0;
        CHECK_MSG(bad == 0, "%s: %d wrong values", dtype_name(dtypes[d]), bad);
        free((void *)w.data), free(exact);
    }
    /* the AVX2 copy (8x8 transposes) writes the portable one's bytes */
    static const int64_t shapes[][2] = {{16, 8}, {32, 24}, {35, 19}, {50, 2051}};
    for (size_t d = 0; has_avx2() && d < ARRAY_LEN(dtypes); d++)
        for (size_t s = 0; s < ARRAY_LEN(shapes); s++) {
            const int64_t rows = shapes[s][0], cols = shapes[s][1];
            double *exact = xmalloc((size_t)(rows * cols) * sizeof(double));
            weight w = {.dtype = dtypes[d], .rows = rows, .cols = cols};
            w.data = random_weight(dtypes[d], rows, cols, exact);
            const int64_t panels = (rows + WEIGHT_PANEL - 1) / WEIGHT_PANEL;
            size_t bytes = (size_t)(panels * WEIGHT_PANEL * cols) * dtype_size(w.dtype);
            uint8_t *a = xmalloc(bytes), *b = xmalloc(bytes);
            cpu_kernels_portable.pack_panels(a, &w, 0, panels);
            cpu_kernels_avx2.pack_panels(b, &w, 0, panels);
            CHECK_MSG(memcmp(a, b, bytes) == 0, "%s %lldx%lld: AVX2 panels differ",
                      dtype_name(dtypes[d]), (long long)rows, (long long)cols);
            free(a), free(b), free((void *)w.data), free(exact);
        }
}

/* Both tables' dot and axpy against doubles, over lengths that hit every tail. */
static void dot_and_axpy(void) {
    const cpu_kernels *tables[] = {&cpu_kernels_portable, has_avx2() ? &cpu_kernels_avx2 : NULL};
    float a[67], b[67], y[67];
    for (int i = 0; i < 67; i++) a[i] = check_urand(), b[i] = check_urand();
    for (size_t k = 0; k < ARRAY_LEN(tables); k++) {
        if (!tables[k]) continue;
        for (int n = 0; n <= 67; n++) {
            double ref = 0, mag = 0;
            for (int i = 0; i < n; i++)
                ref += (double)a[i] * b[i], mag += fabs((double)a[i] * b[i]);
            float got = tables[k]->dot(a, b, n);
            CHECK_MSG(fabs(got - ref) <= (n + 2) * 1.2e-7 * mag, "%s dot n=%d: %g vs %g",
                      tables[k]->name, n, (double)got, ref);
            for (int i = 0; i < n; i++) y[i] = b[i];
            tables[k]->axpy(y, 0.75f, a, n);
            for (int i = 0; i < n; i++)
                CHECK_MSG(fabs(y[i] - (b[i] + 0.75 * a[i])) <= 2.4e-7 * (fabs(b[i]) + fabs(a[i])),
                          "%s axpy n=%d i=%d", tables[k]->name, n, i);
        }
    }
}

/* Attention over `len` positions fed to the kernel in runs of `run_len`, against softmax in
 * doubles. Scores are spread wide (×3) so the running max moves and rescaling is exercised. */
static int attend_case(const cpu_kernels *k, int hd, int len, int run_len) {
    float *q = xmalloc((size_t)hd * sizeof(float)), *acc = xcalloc((size_t)hd, sizeof(float));
    float *keys = xmalloc((size_t)(len * hd) * sizeof(float));
    float *vals = xmalloc((size_t)(len * hd) * sizeof(float));
    double *sc = xmalloc((size_t)len * sizeof(double));
    for (int i = 0; i < hd; i++) q[i] = 3 * check_urand();
    for (int i = 0; i < len * hd; i++) keys[i] = check_urand(), vals[i] = check_urand();
    const float scale = 1.0f / sqrtf((float)hd);
    float max = -INFINITY, sum = 0;
    for (int p = 0; p < len; p += run_len) {
        int run = len - p < run_len ? len - p : run_len;
        k->attend(acc, &max, &sum, q, keys + (size_t)p * hd, vals + (size_t)p * hd, run, hd, scale);
    }
    double smax = -INFINITY, ssum = 0;
    for (int p = 0; p < len; p++) {
        sc[p] = 0;
        for (int d = 0; d < hd; d++) sc[p] += (double)q[d] * keys[p * hd + d];
        sc[p] *= scale;
        if (sc[p] > smax) smax = sc[p];
    }
    for (int p = 0; p < len; p++) ssum += sc[p] = exp(sc[p] - smax);
    int bad = 0;
    for (int d = 0; d < hd; d++) {
        double ref = 0;
        for (int p = 0; p < len; p++) ref += sc[p] / ssum * vals[p * hd + d];
        double got = acc[d] / sum;
        if (!(fabs(got - ref) <= 2e-6) && bad++ < 3)
            printf("    %s attend hd=%d len=%d run=%d: out[%d] = %.7g, expected %.7g\n", k->name,
                   hd, len, run_len, d, got, ref);
    }
    free(q), free(acc), free(keys), free(vals), free(sc);
    return bad;
}

static void attend_matches_softmax(void) {
    const cpu_kernels *tables[] = {&cpu_kernels_portable, has_avx2() ? &cpu_kernels_avx2 : NULL};
    static const int hds[] = {6, 8, 64, 72, 128, 256};
    static const int lens[][2] = {{1, 1}, {7, 16}, {9, 4}, {40, 64}, {150, 16}, {150, 64}};
    int bad = 0;
    for (size_t t = 0; t < ARRAY_LEN(tables); t++)
        for (size_t h = 0; tables[t] && h < ARRAY_LEN(hds); h++)
            for (size_t l = 0; l < ARRAY_LEN(lens); l++)
                bad += attend_case(tables[t], hds[h], lens[l][0], lens[l][1]);
    CHECK_MSG(bad == 0, "%d mismatches", bad);
}

/* silu(a)·b of both tables against doubles, over a range that reaches exp's clamps. */
static void silu_matches(void) {
    const cpu_kernels *tables[] = {&cpu_kernels_portable, has_avx2() ? &cpu_kernels_avx2 : NULL};
    enum { N = 1003 };
    static float a[N], b[N], orig[N];
    for (int i = 0; i < N; i++) orig[i] = (i - N / 2) * 0.2f, b[i] = check_urand();
    for (size_t t = 0; t < ARRAY_LEN(tables); t++) {
        if (!tables[t]) continue;
        memcpy(a, orig, sizeof a);
        tables[t]->silu_mul(a, b, N);
        int bad = 0;
        for (int i = 0; i < N; i++) {
            double x = orig[i], ref = x / (1 + exp(-x)) * b[i];
            if (!(fabs(a[i] - ref) <= 4e-7 * fabs(ref) + 1e-30)) bad++;
        }
        CHECK_MSG(bad == 0, "%s: %d mismatches", tables[t]->name, bad);
    }
}

/* op_matmul splits rows over threads: every row of y, for every token, must be the
 * portable kernel's (within rounding), whatever the split. */
static void matmul_through_pool(void) {
    thread_pool *pool = pool_create(3);
    static const int tokens[] = {1, 2, 5, 6, 7, 19};
    int bad = 0;
    for (size_t d = 0; d < ARRAY_LEN(dtypes); d++)
        for (size_t ti = 0; ti < ARRAY_LEN(tokens); ti++) {
            const int n = tokens[ti];
            const int64_t rows = 203, cols = 136;
            double *exact = xmalloc((size_t)(rows * cols) * sizeof(double));
            weight w = random_panels(dtypes[d], rows, cols, exact);
            float *x = xmalloc((size_t)(n * cols) * sizeof(float));
            float *y = xmalloc((size_t)(n * rows) * sizeof(float));
            for (int64_t i = 0; i < n * cols; i++) x[i] = check_urand();
            op_matmul(pool, y, x, n, &w);
            for (int t = 0; t < n; t++)
                for (int64_t r = 0; r < rows; r++) {
                    double ref = 0, mag = 0;
                    for (int64_t c = 0; c < cols; c++) {
                        double p = exact[r * cols + c] * (double)x[t * cols + c];
                        ref += p, mag += fabs(p);
                    }
                    if (!(fabs(y[t * rows + r] - ref) <= (cols + 2) * 1.2e-7 * mag)) bad++;
                }
            free((void *)w.data);
            free(exact);
            free(x);
            free(y);
        }
    CHECK_MSG(bad == 0, "op_matmul (%s): %d mismatches", compute_isa(), bad);
    pool_destroy(pool);
}

/* op_matmul_fused: three weights of different dtypes and heights over one x in one pass must
 * each give what the double reference gives. */
static void fused_matmul(void) {
    thread_pool *pool = pool_create(2);
    const int64_t cols = 72, rows[3] = {40, 9, 131};
    const int n = 7;
    double *exact[3];
    weight w[3];
    float *y[3];
    float *x = xmalloc((size_t)(n * cols) * sizeof(float));
    for (int64_t i = 0; i < n * cols; i++) x[i] = check_urand();
    for (int i = 0; i < 3; i++) {
        exact[i] = xmalloc((size_t)(rows[i] * cols) * sizeof(double));
        w[i] = random_panels(dtypes[i], rows[i], cols, exact[i]);
        y[i] = xmalloc((size_t)(n * rows[i]) * sizeof(float));
    }
    for (int tokens = 1; tokens <= n; tokens += n - 1) {
        op_matmul_fused(pool, y, x, tokens, (const weight *[]){&w[0], &w[1], &w[2]}, 3);
        int bad = 0;
        for (int i = 0; i < 3; i++)
            for (int t = 0; t < tokens; t++)
                for (int64_t r = 0; r < rows[i]; r++) {
                    double ref = 0, mag = 0;
                    for (int64_t c = 0; c < cols; c++) {
                        double p = exact[i][r * cols + c] * (double)x[t * cols + c];
                        ref += p, mag += fabs(p);
                    }
                    if (!(fabs(y[i][t * rows[i] + r] - ref) <= (cols + 2) * 1.2e-7 * mag)) bad++;
                }
        CHECK_MSG(bad == 0, "%d tokens: %d mismatches", tokens, bad);
    }
    for (int i = 0; i < 3; i++) free((void *)w[i].data), free(exact[i]), free(y[i]);
    free(x);
    pool_destroy(pool);
}

int main(void) {
    RUN(portable_dense);
    RUN(avx2_dense);
    RUN(avx512_dense);
    RUN(bit_identical);
    RUN(panels_round_trip);
    RUN(dot_and_axpy);
    RUN(attend_matches_softmax);
    RUN(silu_matches);
    RUN(matmul_through_pool);
    RUN(fused_matmul);
    return CHECK_DONE();
}
