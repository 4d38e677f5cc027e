/*
 * matmul.c — y = x·wᵀ over all threads. Work is split by output rows into chunks handed out
 * dynamically (cores shared with other processes finish unevenly). For many tokens, x is cut
 * into blocks that fit in L2 so each chunk of weight rows is reused from cache across a block.
 */
#include "compute/cpu/kernels.h"

#define X_BLOCK_BYTES (192 * 1024)

typedef struct matmul_job {
    float *y;
    const float *x;
    int n;
    const weight *w;
    int64_t rows_per_task;
    int tokens_per_block;
    void (*rows)(float *, int64_t, const float *, int, const weight *, int64_t, int64_t);
} matmul_job;

static void matmul_task(void *ctx, int task, int n_tasks) {
    (void)n_tasks;
    const matmul_job *j = ctx;
    int64_t r0 = task * j->rows_per_task;
    int64_t r1 = r0 + j->rows_per_task;
    if (r1 > j->w->rows) r1 = j->w->rows;
    for (int t0 = 0; t0 < j->n; t0 += j->tokens_per_block) {
        int nt = j->n - t0 < j->tokens_per_block ? j->n - t0 : j->tokens_per_block;
        j->rows(j->y + (int64_t)t0 * j->w->rows, j->w->rows, j->x + (int64_t)t0 * j->w->cols, nt,
                j->w, r0, r1);
    }
}

void op_matmul(thread_pool *pool, float *y, const float *x, int n, const weight *w) {
    const cpu_kernels *k = cpu_kernels_get();
    matmul_job j = {.y = y, .x = x, .n = n, .w = w};
    j.rows = weight_is_quantized(w) ? (k->quant_rows ? k->quant_rows : quant_rows_portable)
                                    : k->dense_rows;
    int threads = pool_size(pool);
    /* Enough chunks to balance uneven cores, each large enough to amortize dispatch. */
    int64_t per = (w->rows + threads * 8 - 1) / (threads * 8);
    int64_t min_rows = n > 1 ? 16 : 32;
    if (per < min_rows) per = min_rows;
    j.rows_per_task = (per + 3) & ~(int64_t)3;
    int64_t tb = X_BLOCK_BYTES / (w->cols * (int64_t)sizeof(float));
    tb = tb < 3 ? 3 : tb - tb % 3;
    j.tokens_per_block = tb > n ? n : (int)tb;
    /* Dense kernels pack each panel of 16 rows once and run every token over it. */
    if (!weight_is_quantized(w)) {
        j.tokens_per_block = n;
        if (n > 1) j.rows_per_task = (per + 15) & ~(int64_t)15;
    }
    int n_tasks = (int)((w->rows + j.rows_per_task - 1) / j.rows_per_task);
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
