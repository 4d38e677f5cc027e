/*
 * matmul.c — y = x·wᵀ over all threads for dense weights (quantized ones go to quant_matmul.c).
 * Work is split by output rows into chunks handed out dynamically (cores shared with other
 * processes finish unevenly). The dense kernels get every token at once and run all of them
 * over each panel of 16 rows (weights in panel order, compute.h). Several weights applied to the
 * same x (q/k/v, gate/up) can share one parallel pass: one barrier instead of several.
 */
#include "compute/cpu/kernels.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct matmul_job {
    const float *x;
    int n, count;
    void (*rows)(float *, int64_t, const float *, int, const weight *, int64_t, int64_t);
    matmul_part part[OP_MATMUL_MAX_FUSED];
} matmul_job;

static void matmul_task(void *ctx, int task, int n_tasks) {
    (void)n_tasks;
    const matmul_job *j = ctx;
    int64_t r0, r1;
    const matmul_part *m = matmul_part_of(j->part, j->count, task, &r0, &r1);
    j->rows(m->y, m->w->rows, j->x, j->n, m->w, r0, r1);
}

/* Splits one weight into tasks; returns how many. */
static int plan_part(matmul_part *m, float *y, const weight *w, int threads, int first) {
    /* Enough chunks to balance uneven cores, each large enough to amortize dispatch; whole
     * pairs of panels (what decode and the AVX-512 kernel take at once). */
    int64_t per = (w->rows + threads * 8 - 1) / (threads * 8);
    return matmul_part_plan(m, y, w,
                            (per + 2 * WEIGHT_PANEL - 1) & ~(int64_t)(2 * WEIGHT_PANEL - 1), first);
}

void op_matmul(thread_pool *pool, float *y, const float *x, int n, const weight *w) {
    op_matmul_fused(pool, &y, x, n, &w, 1);
}

void op_matmul_fused(thread_pool *pool, float *const *y, const float *x, int n,
                     const weight *const *w, int count) {
    int quantized = 0;
    for (int i = 0; i < count; i++) quantized += weight_is_quantized(w[i]);
    bool same_acts = true; /* quantized x is shared when cols and group size agree */
    for (int i = 1; i < count; i++)
        same_acts &= w[i]->cols == w[0]->cols && w[i]->group_size == w[0]->group_size;
    if (quantized == count && same_acts) {
        quant_matmul_fused(pool, y, x, n, w, count);
        return;
    }
    if (quantized > 0) { /* mixed: one weight at a time */
        for (int i = 0; i < count; i++) op_matmul_fused(pool, &y[i], x, n, &w[i], 1);
        return;
    }
    for (int i = 0; i < count; i++)
        if (!w[i]->panels) { /* a caller's bug, not bad input: the kernels would read garbage */
            fprintf(stderr, "kiln: internal error: dense weight in row order passed to "
                            "op_matmul (weight_to_panels first)\n");
            abort();
        }
    matmul_job j = {.x = x, .n = n, .count = count, .rows = cpu_kernels_get()->dense_rows};
    int threads = pool_size(pool), n_tasks = 0;
    for (int i = 0; i < count; i++) n_tasks += plan_part(&j.part[i], y[i], w[i], threads, n_tasks);
    pool_run(pool, matmul_task, &j, n_tasks);
}

void op_embedding(float *out, const weight *w, int64_t row) {
    if (weight_is_quantized(w)) {
        dequantize_row(out, w, row);
        return;
    }
    if (w->panels) { /* a tied embedding: one column of 16 a step */
        for (int64_t k = 0; k < w->cols; k++) out[k] = weight_dense_at(w, row, k);
        return;
    }
    const uint8_t *base = w->data;
    to_f32(out, base + (size_t)(row * w->cols) * dtype_size(w->dtype), w->dtype, (size_t)w->cols);
}
