/*
 * matmul.c — y = x·wᵀ over all threads. Work is split by output rows into chunks handed out
 * dynamically (cores shared with other processes finish unevenly). Several weights applied to
 * the same x (q/k/v, gate/up) can share one parallel pass: one barrier instead of several. For many
 * tokens, x is cut into blocks that fit in L2 so each chunk of weight rows is reused from cache
 * across a block.
 */
#include "compute/cpu/kernels.h"

#define X_BLOCK_BYTES (192 * 1024)

/* One weight of a (possibly fused) matmul: its output, rows per task and first task index. */
typedef struct matmul_part {
    float *y;
    const weight *w;
    int64_t rows_per_task;
    int tokens_per_block;
    int first_task;
    void (*rows)(float *, int64_t, const float *, int, const weight *, int64_t, int64_t);
} matmul_part;

typedef struct matmul_job {
    const float *x;
    int n, count;
    matmul_part part[OP_MATMUL_MAX_FUSED];
} matmul_job;

static void matmul_task(void *ctx, int task, int n_tasks) {
    (void)n_tasks;
    const matmul_job *j = ctx;
    int p = j->count - 1;
    while (p > 0 && task < j->part[p].first_task) p--;
    const matmul_part *m = &j->part[p];
    int64_t r0 = (task - m->first_task) * m->rows_per_task;
    int64_t r1 = r0 + m->rows_per_task;
    if (r1 > m->w->rows) r1 = m->w->rows;
    for (int t0 = 0; t0 < j->n; t0 += m->tokens_per_block) {
        int nt = j->n - t0 < m->tokens_per_block ? j->n - t0 : m->tokens_per_block;
        m->rows(m->y + (int64_t)t0 * m->w->rows, m->w->rows, j->x + (int64_t)t0 * m->w->cols, nt,
                m->w, r0, r1);
    }
}

/* Splits one weight into tasks; returns how many. */
static int plan_part(matmul_part *m, float *y, const weight *w, int n, int threads, int first) {
    const cpu_kernels *k = cpu_kernels_get();
    m->y = y;
    m->w = w;
    m->first_task = first;
    m->rows = weight_is_quantized(w) ? (k->quant_rows ? k->quant_rows : quant_rows_portable)
                                     : k->dense_rows;
    /* Enough chunks to balance uneven cores, each large enough to amortize dispatch. */
    int64_t per = (w->rows + threads * 8 - 1) / (threads * 8);
    int64_t min_rows = n > 1 ? 16 : 32;
    if (per < min_rows) per = min_rows;
    m->rows_per_task = (per + 3) & ~(int64_t)3;
    int64_t tb = X_BLOCK_BYTES / (w->cols * (int64_t)sizeof(float));
    tb = tb < 3 ? 3 : tb - tb % 3;
    m->tokens_per_block = tb > n ? n : (int)tb;
    /* Dense kernels pack each panel of 16 rows once and run every token over it. */
    if (!weight_is_quantized(w)) {
        m->tokens_per_block = n;
        if (n > 1) m->rows_per_task = (per + 15) & ~(int64_t)15;
    }
    return (int)((w->rows + m->rows_per_task - 1) / m->rows_per_task);
}

void op_matmul(thread_pool *pool, float *y, const float *x, int n, const weight *w) {
    op_matmul_fused(pool, &y, x, n, &w, 1);
}

void op_matmul_fused(thread_pool *pool, float *const *y, const float *x, int n,
                     const weight *const *w, int count) {
    matmul_job j = {.x = x, .n = n, .count = count};
    int threads = pool_size(pool), n_tasks = 0;
    for (int i = 0; i < count; i++)
        n_tasks += plan_part(&j.part[i], y[i], w[i], n, threads, n_tasks);
    pool_run(pool, matmul_task, &j, n_tasks);
}

void op_embedding(float *out, const weight *w, int64_t row) {
    if (weight_is_quantized(w)) {
        dequantize_row(out, w, row);
        return;
    }
    const uint8_t *base = w->data;
    to_f32(out, base + (size_t)(row * w->cols) * dtype_size(w->dtype), w->dtype, (size_t)w->cols);
}
