/*
 * read.c — a plain read of memory on all threads, the yardstick decode is measured against:
 * 32-byte loads folded with xor (AVX2 where the CPU has it), the bytes split into chunks the
 * threads take in turn, as op_matmul splits rows.
 */
#include "compute/cpu/kernels.h"

#include <immintrin.h>
#include <stdatomic.h>
#include <string.h>

__attribute__((target("avx2"))) static uint64_t read_avx2(const uint8_t *p, size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        a0 = _mm256_xor_si256(a0, _mm256_loadu_si256((const __m256i *)(p + i)));
        a1 = _mm256_xor_si256(a1, _mm256_loadu_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_xor_si256(a2, _mm256_loadu_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_xor_si256(a3, _mm256_loadu_si256((const __m256i *)(p + i + 96)));
    }
    __m256i a = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    uint64_t s = (uint64_t)_mm256_extract_epi64(a, 0) ^ (uint64_t)_mm256_extract_epi64(a, 3);
    for (; i < n; i++) s += p[i];
    return s;
}

static uint64_t read_portable(const uint8_t *p, size_t n) {
    uint64_t s = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        s ^= v;
    }
    for (; i < n; i++) s += p[i];
    return s;
}

typedef struct read_job {
    const uint8_t *p;
    size_t bytes, chunk;
    bool avx2;
    _Atomic uint64_t sum;
} read_job;

static void read_task(void *ctx, int task, int n_tasks) {
    (void)n_tasks;
    read_job *j = ctx;
    size_t off = (size_t)task * j->chunk, n = j->bytes - off < j->chunk ? j->bytes - off : j->chunk;
    uint64_t s = j->avx2 ? read_avx2(j->p + off, n) : read_portable(j->p + off, n);
    atomic_fetch_xor(&j->sum, s);
}

uint64_t op_read(thread_pool *pool, const void *p, size_t bytes, size_t chunk) {
    if (bytes == 0) return 0;
    if (chunk == 0) { /* 1 MiB, or less so that every thread gets at least four chunks */
        const size_t share = bytes / (4 * (size_t)pool_size(pool));
        chunk = share < ((size_t)1 << 20) ? (share + 4095) & ~(size_t)4095 : (size_t)1 << 20;
        if (chunk < 65536) chunk = 65536;
    }
    read_job j = {.p = p, .bytes = bytes, .chunk = chunk};
    j.avx2 = strcmp(compute_isa(), "portable") != 0;
    pool_run(pool, read_task, &j, (int)((bytes + chunk - 1) / chunk));
    return atomic_load(&j.sum);
}
