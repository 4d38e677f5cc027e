/*
 * bandwidth.c — the memory read bandwidth a decode step can hope for: reads a buffer the way
 * op_matmul reads weights (kiln's thread pool, 1 MiB chunks handed out dynamically, AVX2
 * loads) and prints the median and peak of several passes as JSON lines. Four variants:
 * an mmapped file served from the page cache (as kiln maps weights) and anonymous memory,
 * each with and without MADV_HUGEPAGE. Last, the peak AVX2 FMA rate of all threads (the ceiling
 * for prefill, which is compute-bound).
 *
 *   bandwidth [-f FILE | -s MIB] [-t THREADS] [-p PASSES] [-c CHUNK_KIB] [-m MODE]
 *
 * MODE: all (default: the four variants and fma_peak), file (the mmapped file with
 * MADV_HUGEPAGE only, as kiln maps quantized weights), anon (-s MIB of anonymous memory with
 * MADV_HUGEPAGE, where kiln keeps dense weights in panel order), fma (fma_peak only), or kernel:
 * plain read passes interleaved with kiln's one-token BF16 matmul over the same bytes, printing the
 * kernel's share of the read bandwidth (a kernel-efficiency check that shared-host drift cancels
 * out). Without -f a temporary file of MIB mebibytes (default 1024) is written and removed.
 */
#include "base/base.h"
#include "compute/compute.h"

#include <errno.h>
#include <fcntl.h>
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Peak FMA throughput: independent chains so latency hides behind the two FMA pipes. */
#define FMA_ITERS 20000000
__attribute__((target("avx2,fma"))) static void fma_task(void *ctx, int task, int n_tasks) {
    (void)n_tasks;
    __m256 a[10], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 10; i++) a[i] = _mm256_set1_ps((float)(i + task));
    for (int it = 0; it < FMA_ITERS / 10; it++)
#pragma GCC unroll 10
        for (int i = 0; i < 10; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);
    __m256 s = a[0];
    for (int i = 1; i < 10; i++) s = _mm256_add_ps(s, a[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    ((float *)ctx)[task] = out[0];
}

static void measure_fma(thread_pool *pool) {
    int n = pool_size(pool);
    float *sink = xcalloc((size_t)n, sizeof *sink);
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = now_seconds();
        pool_run(pool, fma_task, sink, n);
        double gflops = (double)n * FMA_ITERS * 16 / (now_seconds() - t0) / 1e9;
        if (gflops > best) best = gflops;
    }
    printf("{\"test\":\"fma_peak\",\"threads\":%d,\"gflop_per_s\":%.1f,\"checksum\":%d}\n", n, best,
           (int)sink[0] & 1);
    fflush(stdout);
    free(sink);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Runs `passes` timed passes over data (after one untimed warm-up) and prints one line. */
static void measure(const char *test, thread_pool *pool, const uint8_t *data, size_t size,
                    size_t chunk, int passes) {
    double *gbs = xcalloc((size_t)passes, sizeof *gbs);
    uint64_t sink = op_read(pool, data, size, chunk);
    for (int p = 0; p < passes; p++) {
        double t0 = now_seconds();
        sink ^= op_read(pool, data, size, chunk);
        gbs[p] = (double)size / (now_seconds() - t0) / 1e9;
    }
    qsort(gbs, (size_t)passes, sizeof *gbs, cmp_double);
    printf("{\"test\":\"%s\",\"threads\":%d,\"bytes\":%zu,\"passes\":%d,"
           "\"median_gb_per_s\":%.2f,\"peak_gb_per_s\":%.2f,\"min_gb_per_s\":%.2f,"
           "\"checksum\":%llu}\n",
           test, pool_size(pool), size, passes, gbs[passes / 2], gbs[passes - 1], gbs[0],
           (unsigned long long)(sink & 0xff));
    fflush(stdout);
    free(gbs);
}

/* Interleaves plain read passes with op_matmul passes (one token, the file's bytes seen as a
 * BF16 weight of 2048 columns) so both see the same contention: the kernel's share of the
 * bandwidth a plain read gets, free of the minute-to-minute drift of a shared host. */
static void kernel_vs_read(const char *path, thread_pool *pool, size_t chunk, int passes) {
    int fd = open(path, O_RDONLY);
    off_t size = fd < 0 ? -1 : lseek(fd, 0, SEEK_END);
    void *p = size > 0 ? mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    if (fd >= 0) close(fd);
    if (p == MAP_FAILED) return;
    madvise(p, (size_t)size, MADV_HUGEPAGE);
    const int64_t cols = 2048;
    /* the bytes taken as a weight already in panel order (their values do not matter here) */
    weight w = {.dtype = DT_BF16, .cols = cols, .data = p, .panels = true};
    w.rows = (int64_t)((size_t)size / (cols * 2)) / WEIGHT_PANEL * WEIGHT_PANEL;
    float *x = aligned_buffer((size_t)cols * sizeof(float));
    float *y = aligned_buffer((size_t)w.rows * sizeof(float));
    for (int64_t i = 0; i < cols; i++) x[i] = 1.0f / (float)(i + 1);
    const size_t bytes = weight_bytes(&w);
    double *rd = xcalloc((size_t)passes, sizeof *rd), *mv = xcalloc((size_t)passes, sizeof *mv);
    op_matmul(pool, y, x, 1, &w);
    for (int i = 0; i < passes; i++) {
        double t0 = now_seconds();
        op_read(pool, p, bytes, chunk);
        double t1 = now_seconds();
        op_matmul(pool, y, x, 1, &w);
        double t2 = now_seconds();
        rd[i] = (double)bytes / (t1 - t0) / 1e9;
        mv[i] = (double)bytes / (t2 - t1) / 1e9;
    }
    double ratio = 0;
    for (int i = 0; i < passes; i++) ratio += mv[i] / rd[i] / passes;
    qsort(rd, (size_t)passes, sizeof *rd, cmp_double);
    qsort(mv, (size_t)passes, sizeof *mv, cmp_double);
    printf("{\"test\":\"matvec_bf16_vs_read\",\"threads\":%d,\"bytes\":%zu,\"isa\":\"%s\","
           "\"read_median_gb_per_s\":%.2f,\"matvec_median_gb_per_s\":%.2f,"
           "\"mean_ratio\":%.3f,\"y0\":%g}\n",
           pool_size(pool), bytes, compute_isa(), rd[passes / 2], mv[passes / 2], ratio,
           (double)y[0]);
    fflush(stdout);
    free(rd);
    free(mv);
    aligned_free(x);
    aligned_free(y);
    munmap(p, (size_t)size);
}

static int make_temp_file(char *path, size_t size) {
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    size_t chunk = 8u << 20;
    uint8_t *buf = xmalloc(chunk);
    for (size_t i = 0; i < chunk; i++) buf[i] = (uint8_t)(i * 2654435761u >> 13);
    int rc = 0;
    for (size_t done = 0; done < size && rc == 0; done += chunk) {
        size_t n = size - done < chunk ? size - done : chunk;
        if (write(fd, buf, n) != (ssize_t)n) rc = -1;
    }
    free(buf);
    close(fd);
    return rc;
}

static void file_variant(const char *path, thread_pool *pool, size_t chunk, int passes, bool huge) {
    int fd = open(path, O_RDONLY);
    off_t size = fd < 0 ? -1 : lseek(fd, 0, SEEK_END);
    void *p = size > 0 ? mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    if (fd >= 0) close(fd);
    if (p == MAP_FAILED) {
        fprintf(stderr, "bandwidth: %s: %s\n", path, strerror(errno));
        return;
    }
    if (huge) madvise(p, (size_t)size, MADV_HUGEPAGE);
    madvise(p, (size_t)size, MADV_WILLNEED);
    measure(huge ? "read_file_hugepage" : "read_file", pool, p, (size_t)size, chunk, passes);
    munmap(p, (size_t)size);
}

static void anon_variant(size_t size, thread_pool *pool, size_t chunk, int passes, bool huge) {
    uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        fprintf(stderr, "bandwidth: anonymous %zu bytes: %s\n", size, strerror(errno));
        return;
    }
    madvise(p, size, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    for (size_t i = 0; i < size; i += 64) p[i] = (uint8_t)(i >> 6);
    measure(huge ? "read_anon_hugepage" : "read_anon", pool, p, size, chunk, passes);
    munmap(p, size);
}

int main(int argc, char **argv) {
    const char *file = NULL;
    const char *mode = "all";
    int threads = 0, passes = 9, chunk_kib = 1024, mib = 1024, c;
    while ((c = getopt(argc, argv, "f:s:t:p:c:m:h")) != -1) {
        if (c == 'f')
            file = optarg;
        else if (c == 's')
            mib = atoi(optarg);
        else if (c == 't')
            threads = atoi(optarg);
        else if (c == 'p')
            passes = atoi(optarg);
        else if (c == 'c')
            chunk_kib = atoi(optarg);
        else if (c == 'm')
            mode = optarg;
        else {
            fprintf(stderr, "usage: bandwidth [-f FILE | -s MIB] [-t THREADS] [-p PASSES] "
                            "[-c CHUNK_KIB] [-m all|file|anon|fma|kernel]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (mib <= 0 || passes <= 0 || chunk_kib <= 0 || threads < 0) {
        fprintf(stderr, "bandwidth: -s, -p and -c must be positive\n");
        return 2;
    }
    __builtin_cpu_init();
    const bool has_avx2 = __builtin_cpu_supports("avx2");
    thread_pool *pool = pool_create(threads);
    size_t chunk = (size_t)chunk_kib << 10;
    char tmp[] = "/tmp/kiln-bandwidth-XXXXXX";
    if (strcmp(mode, "all") && strcmp(mode, "file") && strcmp(mode, "anon") &&
        strcmp(mode, "fma") && strcmp(mode, "kernel")) {
        fprintf(stderr, "bandwidth: -m must be all, file, anon, fma or kernel (got \"%s\")\n",
                mode);
        return 2;
    }
    if (!file && strcmp(mode, "fma") != 0 && strcmp(mode, "anon") != 0) {
        if (make_temp_file(tmp, (size_t)mib << 20) < 0) {
            fprintf(stderr, "bandwidth: %s: %s\n", tmp, strerror(errno));
            return 1;
        }
        file = tmp;
    }
    bool all = !strcmp(mode, "all");
    if (!strcmp(mode, "kernel")) kernel_vs_read(file, pool, chunk, passes);
    if (all) file_variant(file, pool, chunk, passes, false);
    if (all || !strcmp(mode, "file")) file_variant(file, pool, chunk, passes, true);
    size_t anon = (size_t)mib << 20;
    if (all) anon_variant(anon, pool, chunk, passes, false);
    if (all || !strcmp(mode, "anon")) anon_variant(anon, pool, chunk, passes, true);
    if ((all || !strcmp(mode, "fma")) && has_avx2 && __builtin_cpu_supports("fma"))
        measure_fma(pool);
    if (file == tmp) unlink(tmp);
    pool_destroy(pool);
    return 0;
}
