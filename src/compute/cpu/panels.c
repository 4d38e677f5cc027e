/*
 * panels.c — dense weights in panel order (compute.h): the copy made once at load, and reading
 * one element back (embedding rows of tied weights, tests); the aligned buffers such copies
 * (and interleave.c's) live in.
 */
#include "compute/cpu/kernels.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE_PAGE ((size_t)2 << 20)

/* Panel p of row-major w into dst (its own panel's bytes). The 16 source rows are read side
 * by side a block of columns at a time, so each cache line read is used whole. */
static void pack_panel_portable(uint8_t *dst, const weight *w, int64_t p) {
    enum { BLOCK = 64 };
    const size_t es = dtype_size(w->dtype);
    const uint8_t *src = w->data;
    const int64_t cols = w->cols, r0 = p * WEIGHT_PANEL;
    for (int64_t k0 = 0; k0 < cols; k0 += BLOCK) {
        int64_t k1 = k0 + BLOCK < cols ? k0 + BLOCK : cols;
        for (int i = 0; i < WEIGHT_PANEL; i++) {
            uint8_t *d = dst + (size_t)(k0 * WEIGHT_PANEL + panel_slot(w->dtype, i)) * es;
            const uint8_t *s = src + (size_t)((r0 + i) * cols + k0) * es;
            for (int64_t k = k0; k < k1; k++, d += WEIGHT_PANEL * es, s += es)
                if (r0 + i < w->rows)
                    memcpy(d, s, es);
                else
                    memset(d, 0, es);
        }
    }
}

void pack_panels_portable(uint8_t *dst, const weight *w, int64_t p0, int64_t p1) {
    const size_t panel_bytes = (size_t)(WEIGHT_PANEL * w->cols) * dtype_size(w->dtype);
    for (int64_t p = p0; p < p1; p++) pack_panel_portable(dst + (size_t)p * panel_bytes, w, p);
}

typedef struct pack_job {
    uint8_t *dst;
    const weight *w;
    int64_t panels, per_task;
} pack_job;

static void pack_task(void *ctx, int task, int n_tasks) {
    (void)n_tasks;
    const pack_job *j = ctx;
    int64_t p0 = task * j->per_task,
            p1 = p0 + j->per_task < j->panels ? p0 + j->per_task : j->panels;
    cpu_kernels_get()->pack_panels(j->dst, j->w, p0, p1);
}

uint8_t *weight_buffer(const weight *w, size_t bytes, const char *layout) {
    /* 2 MiB-aligned so that transparent huge pages can back it (fewer TLB misses in decode) */
    const size_t align = bytes >= HUGE_PAGE ? HUGE_PAGE : 64;
    const size_t alloc = (bytes + align - 1) & ~(align - 1);
    uint8_t *dst = aligned_alloc(align, alloc);
    /* Only the whole huge pages: one over the last partial one would make all 2 MiB of it
     * resident (1B 4-bit: 110 MB more than the model, over 113 weights). */
    if (dst && align == HUGE_PAGE) madvise(dst, bytes & ~(HUGE_PAGE - 1), MADV_HUGEPAGE);
    if (!dst)
        kiln_error("out of memory for a %lld x %lld weight in %s order (%zu bytes)",
                   (long long)w->rows, (long long)w->cols, layout, bytes);
    return dst;
}

void *weight_to_panels(weight *w, thread_pool *pool) {
    const size_t es = dtype_size(w->dtype);
    const int64_t panels = (w->rows + WEIGHT_PANEL - 1) / WEIGHT_PANEL;
    const size_t bytes = (size_t)(panels * WEIGHT_PANEL * w->cols) * es;
    uint8_t *dst = weight_buffer(w, bytes, "panel");
    if (!dst) return NULL;
    pack_job j = {.dst = dst, .w = w, .panels = panels, .per_task = 64};
    pool_run(pool, pack_task, &j, (int)((panels + j.per_task - 1) / j.per_task));
    w->data = dst;
    w->panels = true;
    return dst;
}

float weight_dense_at(const weight *w, int64_t r, int64_t k) {
    return value_at(w->data, w->dtype,
                    w->panels ? panel_index(w, r) + k * WEIGHT_PANEL : r * w->cols + k);
}
