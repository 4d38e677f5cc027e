/*
 * quant_kernels.c — speed of the quantized matmul kernels alone, for each bit width: one
 * token (decode, weights streamed from memory: GB/s of weight bytes read) and a block of
 * tokens (prefill: GMAC/s), next to a plain read of the same number of bytes in the same run,
 * so the ratio to the machine's bandwidth is measured, not assumed.
 *
 *   quant_kernels [-r ROWS] [-c COLS] [-n TOKENS] [-t THREADS] [-b BITS] [-g GROUP] [-T] [-I]
 *
 * -I copies the 4- and 8-bit weights into interleaved order first (compute.h), as loading does
 * on AVX2, and reads those copies for the plain read.
 */
#include "compute/compute.h"

#include <getopt.h>
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct read_job {
    const uint8_t *p;
    size_t n, chunk;
    uint64_t sink[256];
} read_job;

__attribute__((target("avx2"))) static void read_task(void *ctx, int task, int n_tasks) {
    (void)n_tasks;
    read_job *j = ctx;
    size_t a = (size_t)task * j->chunk, b = a + j->chunk < j->n ? a + j->chunk : j->n;
    __m256i acc = _mm256_setzero_si256();
    for (size_t i = a; i + 128 <= b; i += 128) {
        acc = _mm256_xor_si256(acc, _mm256_load_si256((const __m256i *)(j->p + i)));
        acc = _mm256_xor_si256(acc, _mm256_load_si256((const __m256i *)(j->p + i + 32)));
        acc = _mm256_xor_si256(acc, _mm256_load_si256((const __m256i *)(j->p + i + 64)));
        acc = _mm256_xor_si256(acc, _mm256_load_si256((const __m256i *)(j->p + i + 96)));
    }
    j->sink[task & 255] += (uint64_t)_mm256_extract_epi64(acc, 0);
}

/* With -T: process CPU seconds instead of wall seconds, so a loaded machine (other processes
 * taking turns on the cores) does not distort the rates; meaningful with -t 1. */
static bool cpu_clock;
static double clock_s(void) {
    if (!cpu_clock) return now_seconds();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double read_gbps(thread_pool *pool, const uint8_t *p, size_t n) {
    read_job j = {.p = p, .n = n, .chunk = 1 << 20};
    int tasks = (int)((n + j.chunk - 1) / j.chunk);
    double t0 = clock_s();
    pool_run(pool, read_task, &j, tasks);
    return (double)n / (clock_s() - t0) / 1e9;
}

int main(int argc, char **argv) {
    int64_t rows = 8192, cols = 2048;
    int n = 64, threads = 0, group = 64, only_bits = 0, c, reps = 5;
    bool interleave = false;
    while ((c = getopt(argc, argv, "r:c:n:t:b:g:TI")) != -1) {
        if (c == 'T') cpu_clock = true;
        if (c == 'I') interleave = true;
        if (c == 'r') rows = atoll(optarg);
        if (c == 'c') cols = atoll(optarg);
        if (c == 'n') n = atoi(optarg);
        if (c == 't') threads = atoi(optarg);
        if (c == 'b') only_bits = atoi(optarg);
        if (c == 'g') group = atoi(optarg);
    }
    thread_pool *pool = pool_create(threads);
    /* Enough copies of the weight that one decode pass does not fit in the caches. */
    const int bits_list[] = {2, 3, 4, 5, 6, 8};
    float *x = aligned_buffer((size_t)n * (size_t)cols * 4),
          *y = aligned_buffer((size_t)n * (size_t)rows * 4);
    for (int64_t i = 0; i < n * cols; i++) x[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
    op_matmul_reserve(n, cols);
    for (size_t bi = 0; bi < ARRAY_LEN(bits_list); bi++) {
        int bits = bits_list[bi];
        if (only_bits && bits != only_bits) continue;
        size_t code_bytes = (size_t)(rows * cols * bits / 8),
               sc = (size_t)(rows * (cols / group)) * 2;
        const int copies = 8;
        size_t one = code_bytes + 2 * sc, total = one * copies;
        uint8_t *mem = aligned_buffer(total);
        for (size_t i = 0; i < total; i++) mem[i] = (uint8_t)(i * 2654435761u >> 13);
        for (size_t i = 0; i < copies; i++) { /* sane f16 scales/biases */
            uint16_t *s = (uint16_t *)(mem + i * one + code_bytes);
            for (size_t k = 0; k < 2 * sc / 2; k++) s[k] = f32_to_f16(0.001f * (float)(k % 7 + 1));
        }
        weight w[8];
        for (int i = 0; i < copies; i++)
            w[i] = (weight){.dtype = DT_U32,
                            .rows = rows,
                            .cols = cols,
                            .data = mem + i * one,
                            .bits = bits,
                            .group_size = group,
                            .scale_dtype = DT_F16,
                            .scales = mem + i * one + code_bytes,
                            .biases = mem + i * one + code_bytes + sc};
        void *copies_of[8] = {0};
        const bool il = interleave && weight_can_interleave(&w[0]);
        for (int i = 0; il && i < copies; i++) copies_of[i] = weight_interleave(&w[i], pool);
        double best_dec = 1e9, best_pre = 1e9, best_read = 0;
        for (int r = 0; r < reps; r++) {
            double t0 = clock_s();
            for (int i = 0; i < copies; i++) op_matmul(pool, y, x, 1, &w[i]);
            double dt = clock_s() - t0;
            if (dt < best_dec) best_dec = dt;
            double g = 0;
            if (il) { /* the copies, one after another, as the decode pass reads them */
                double t_read = 0;
                for (int i = 0; i < copies; i++) t_read += one / read_gbps(pool, copies_of[i], one);
                g = (double)total / t_read;
            } else {
                g = read_gbps(pool, mem, total);
            }
            if (g > best_read) best_read = g;
            t0 = clock_s();
            op_matmul(pool, y, x, n, &w[r % copies]);
            dt = clock_s() - t0;
            if (dt < best_pre) best_pre = dt;
        }
        printf("{\"bits\":%d,\"group\":%d,\"rows\":%lld,\"cols\":%lld,\"decode_gb_per_s\":%.2f,"
               "\"read_gb_per_s\":%.2f,\"decode_vs_read\":%.2f,\"prefill_tokens\":%d,"
               "\"prefill_gmac_per_s\":%.1f,\"isa\":\"%s\",\"layout\":\"%s\"}\n",
               bits, group, (long long)rows, (long long)cols, (double)total / best_dec / 1e9,
               best_read, (double)total / best_dec / 1e9 / best_read, n,
               (double)rows * (double)cols * n / best_pre / 1e9, compute_isa(),
               il ? "interleaved" : "rows");
        fflush(stdout);
        aligned_free(mem);
        for (int i = 0; i < copies; i++) free(copies_of[i]);
    }
    aligned_free(x);
    aligned_free(y);
    pool_destroy(pool);
    return 0;
}
