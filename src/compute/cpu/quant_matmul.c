/*
 * quant_matmul.c — y = x·wᵀ for MLX affine-quantized w on all threads: the activations are
 * quantized once per call (split over tokens), then the rows are split over threads as in
 * matmul.c. The quantized activations live in the calling thread's scratch (scratch.c), which
 * grows to the largest call and is then reused: after the first step no allocation happens
 * (op_matmul_reserve plans it ahead).
 */
#include "compute/cpu/kernels.h"

static size_t act_bytes(int n, int64_t cols, int group_size) {
    size_t groups = (size_t)(cols / group_size);
    size_t q = ((size_t)n * (size_t)cols * sizeof(int16_t) + 63) & ~(size_t)63;
    return q + (size_t)n * groups * 10 * sizeof(float) + 64;
}

/* The int8 activations of n tokens of cols values in the scratch at p: codes, the decode-order
 * copy, then per block dx and csum and per group xs (groups <= blocks), each part 64-byte
 * aligned. Points a's arrays there unless a is NULL; returns the bytes they take. */
static size_t act8_layout(quant_act8 *a, uint8_t *p, int n, int64_t cols) {
    size_t up = 63, blocks = (size_t)(cols / QUANT8_BLOCK);
    size_t q = ((size_t)n * (size_t)cols + up) & ~up, q4 = ((size_t)cols + up) & ~up;
    size_t per_block = ((size_t)n * blocks * sizeof(float) + up) & ~up;
    if (a) {
        a->q = (int8_t *)p;
        a->q4 = (int8_t *)(p + q);
        a->dx = (void *)(p + q + q4);
        a->csum = (void *)(p + q + q4 + per_block);
        a->xs = (void *)(p + q + q4 + 2 * per_block);
    }
    return q + q4 + 3 * per_block;
}

static int activation_bits = 8;

void compute_set_activation_bits(int bits) {
    activation_bits = bits == 16 ? 16 : 8;
}

int compute_activation_bits(void) {
    return activation_bits;
}

int op_matmul_reserve(int n, int64_t cols) {
    size_t a16 = act_bytes(n, cols, 32), a8 = act8_layout(NULL, NULL, n, cols);
    return thread_scratch(SCRATCH_ACTIVATIONS, a16 > a8 ? a16 : a8) ? 0 : -1;
}

typedef struct quant_job {
    const cpu_kernels *k;
    quant_act a;
    quant_act8 a8;
    const float *x;
    int n, tokens_per_task, count;
    matmul_part part[OP_MATMUL_MAX_FUSED];
} quant_job;

static void quantize_task(void *ctx, int task, int n_tasks) {
    (void)n_tasks;
    quant_job *j = ctx;
    int t0 = task * j->tokens_per_task;
    int t1 = t0 + j->tokens_per_task < j->n ? t0 + j->tokens_per_task : j->n;
    if (t0 >= t1) return;
    if (j->a8.q)
        j->k->quantize_act8(&j->a8, j->x, t0, t1);
    else
        j->k->quantize_act(&j->a, j->x, t0, t1);
}

static void rows_task(void *ctx, int task, int n_tasks) {
    (void)n_tasks;
    quant_job *j = ctx;
    int64_t r0, r1;
    const matmul_part *m = matmul_part_of(j->part, j->count, task, &r0, &r1);
    if (j->a8.q)
        j->k->quant8_rows(m->y, m->w->rows, &j->a8, m->w, r0, r1);
    else if (m->w->interleaved) /* the int16 kernels read the row-major layout only */
        quant_rows_reference(m->y, m->w->rows, j->x, j->n, m->w, r0, r1);
    else
        j->k->quant_rows(m->y, m->w->rows, &j->a, 0, j->n, m->w, r0, r1);
}

/* Splits one weight into tasks; returns how many. Enough chunks to balance uneven cores; with
 * several tokens, a chunk's rows must also stay in L2 while every token passes over them. */
static int plan_part(matmul_part *m, float *y, const weight *w, int n, int threads, int first) {
    int64_t per = (w->rows + threads * 8 - 1) / (threads * 8);
    if (n > 1) {
        int64_t row_bytes = (int64_t)weight_bytes(w) / w->rows;
        int64_t fit = (96 << 10) / row_bytes;
        if (per > fit) per = fit;
    }
    if (per < 16) per = 16;
    /* whole tiles of 8 (AVX-512 prefill: 16) rows */
    return matmul_part_plan(m, y, w, (per + 15) & ~(int64_t)15, first);
}

void quant_matmul_fused(thread_pool *pool, float *const *y, const float *x, int n,
                        const weight *const *ws, int count) {
    const cpu_kernels *k = cpu_kernels_get();
    const weight *w = ws[0]; /* every part has its cols and group size */
    quant_job j = {.k = k, .x = x, .n = n, .count = count};
    j.a = (quant_act){.cols = w->cols,
                      .group_size = w->group_size,
                      .groups = (int)(w->cols / w->group_size),
                      .bits = w->bits};
    const bool int8 = activation_bits == 8 &&
                      (w->group_size == 32 || w->group_size == 64 || w->group_size == 128);
    if (!int8 && count > 1) { /* 16-bit activations are quantized for one width: no fusing */
        for (int i = 0; i < count; i++) quant_matmul_fused(pool, &y[i], x, n, &ws[i], 1);
        return;
    }
    size_t need = int8 ? act8_layout(NULL, NULL, n, w->cols) : act_bytes(n, w->cols, w->group_size);
    uint8_t *mem = thread_scratch(SCRATCH_ACTIVATIONS, need);
    if (!mem) {
        /* No memory for the activations (logged once): fall back to the float reference. */
        log_error("quantized matmul: %s", kiln_last_error());
        for (int i = 0; i < count; i++)
            quant_rows_reference(y[i], ws[i]->rows, x, n, ws[i], 0, ws[i]->rows);
        return;
    }
    if (int8) {
        j.a8 = (quant_act8){.cols = w->cols,
                            .n = n,
                            .group_size = w->group_size,
                            .groups = (int)(w->cols / w->group_size),
                            .blocks = (int)(w->cols / QUANT8_BLOCK)};
        act8_layout(&j.a8, mem, n, w->cols);
        bool four = false; /* only 4-bit decode reads the decode-order copy */
        for (int i = 0; i < count; i++) four |= ws[i]->bits == 4 && !ws[i]->interleaved;
        if (n != 1 || !four) j.a8.q4 = NULL;
    } else {
        size_t q_bytes = ((size_t)n * (size_t)w->cols * sizeof(int16_t) + 63) & ~(size_t)63;
        j.a.q = (int16_t *)mem;
        j.a.dxv = (void *)(mem + q_bytes); /* 64-byte aligned */
        j.a.xs = j.a.dxv + (size_t)n * (size_t)j.a.groups * 8;
        j.a.dx = j.a.xs + (size_t)n * (size_t)j.a.groups;
    }
    int threads = pool_size(pool);
    if ((int64_t)n * w->cols <= 16384) { /* decode: cheaper here than a round trip to the pool */
        j.tokens_per_task = n;
        quantize_task(&j, 0, 1);
    } else {
        int q_tasks = n < threads * 2 ? n : threads * 2;
        j.tokens_per_task = (n + q_tasks - 1) / q_tasks;
        pool_run(pool, quantize_task, &j, q_tasks);
    }
    int n_tasks = 0;
    for (int i = 0; i < count; i++)
        n_tasks += plan_part(&j.part[i], y[i], ws[i], n, threads, n_tasks);
    pool_run(pool, rows_task, &j, n_tasks);
}
