/*
 * forward.c — the transformer forward pass over a batch of (sequence, position, token)
 * entries, written once against the compute ops. The block is the Llama family's:
 *   x += o_proj(attention(rope(q_proj(norm(x))), rope(k_proj(...)), v_proj(...)))
 *   x += down_proj(silu(gate_proj(norm(x))) * up_proj(norm(x)))
 * with the optional pieces an architecture turns on (biases, per-head q/k norms, sliding
 * window). Every matmul runs over all entries of the batch at once, so a prompt chunk reuses
 * each weight row across its tokens, and decode tokens of many sequences share one weight pass.
 */
#include "engine/internal.h"

#include <math.h>
#include <string.h>

#define MAX_HEAD_DIM 512
/* Query heads sharing a KV head, and their head_dim values in all: the group's accumulators
 * live on a worker's stack. */
#define MAX_GROUP        256
#define MAX_GROUP_FLOATS 16384

struct forward_state {
    const model *m;
    thread_pool *pool;
    int max_batch;
    float *x, *xb, *q, *k, *v, *att, *hb, *hb2;
};

forward_state *forward_state_create(const model *m, int max_batch, thread_pool *pool) {
    const model_config *c = &m->cfg;
    if (c->head_dim > MAX_HEAD_DIM) {
        kiln_error("head_dim %d is larger than the supported %d", c->head_dim, MAX_HEAD_DIM);
        return NULL;
    }
    if (c->n_heads / c->n_kv_heads > MAX_GROUP ||
        c->n_heads / c->n_kv_heads * c->head_dim > MAX_GROUP_FLOATS) {
        kiln_error("%d query heads of head_dim %d share a KV head (supported: at most %d heads, "
                   "%d values in all)",
                   c->n_heads / c->n_kv_heads, c->head_dim, MAX_GROUP, MAX_GROUP_FLOATS);
        return NULL;
    }
    forward_state *fs = xcalloc(1, sizeof *fs);
    fs->m = m;
    fs->pool = pool;
    fs->max_batch = max_batch;
    size_t B = (size_t)max_batch, q_dim = (size_t)c->n_heads * c->head_dim;
    size_t kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    size_t wide = (size_t)c->dim > q_dim ? (size_t)c->dim : q_dim;
    float **bufs[] = {&fs->x, &fs->xb, &fs->q, &fs->k, &fs->v, &fs->att, &fs->hb, &fs->hb2};
    size_t sizes[] = {c->dim, wide, q_dim, kv_dim, kv_dim, q_dim, c->hidden_dim, c->hidden_dim};
    for (size_t i = 0; i < ARRAY_LEN(bufs); i++)
        if (!(*bufs[i] = aligned_buffer(B * sizes[i] * sizeof(float)))) {
            forward_state_free(fs);
            return NULL;
        }
    /* Quantized matmuls keep their int16 activations in a per-thread scratch: plan it now. */
    size_t widest = wide > (size_t)c->hidden_dim ? wide : (size_t)c->hidden_dim;
    if (op_matmul_reserve(max_batch, (int64_t)widest) < 0) {
        forward_state_free(fs);
        return NULL;
    }
    return fs;
}

void forward_state_free(forward_state *fs) {
    if (!fs) return;
    float *bufs[] = {fs->x, fs->xb, fs->q, fs->k, fs->v, fs->att, fs->hb, fs->hb2};
    for (size_t i = 0; i < ARRAY_LEN(bufs); i++) aligned_free(bufs[i]);
    free(fs);
}

int forward_max_batch(const forward_state *fs) {
    return fs->max_batch;
}

/* y[n, w->rows] = x · wᵀ + bias */
static void linear(forward_state *fs, float *y, const float *x, int n, const weight *w,
                   const float *bias) {
    op_matmul(fs->pool, y, x, n, w);
    if (bias)
        for (int i = 0; i < n; i++) op_add(y + (size_t)i * w->rows, bias, (int)w->rows);
}

/* Several linears of the same input in one parallel pass (q/k/v; gate/up). */
static void linear_fused(forward_state *fs, float *const *y, const float *x, int n,
                         const weight *const *w, const float *const *bias, int count) {
    op_matmul_fused(fs->pool, y, x, n, w, count);
    for (int k = 0; k < count; k++)
        if (bias[k])
            for (int i = 0; i < n; i++)
                op_add(y[k] + (size_t)i * w[k]->rows, bias[k], (int)w[k]->rows);
}

typedef struct attention_job {
    forward_state *fs;
    const kv_cache *kv;
    const batch_entry *batch;
    int layer;
} attention_job;

/* The online-softmax step over `run` positions of a quantized KV block (records of kv_quant.c),
 * one position at a time. */
static void attend_quantized(const attention_job *j, int block, int slot, int run, int kvh,
                             const float *q, float scale, float *acc, float *max, float *sum) {
    const int hd = j->fs->m->cfg.head_dim;
    const int qbits = kv_quant_bits(j->kv), qgroup = kv_quant_group(j->kv);
    for (int r = slot; r < slot + run; r++) {
        const uint8_t *kq = kv_kq(j->kv, block, j->layer, kvh, r);
        const uint8_t *vq = kv_vq(j->kv, block, j->layer, kvh, r);
        float s = kv_quant_dot(kq, q, hd, qbits, qgroup) * scale;
        if (s > *max) {
            float f = expf(*max - s);
            for (int d = 0; d < hd; d++) acc[d] *= f;
            *sum *= f;
            *max = s;
        }
        float w = expf(s - *max);
        *sum += w;
        kv_quant_axpy(acc, w, vq, hd, qbits, qgroup);
    }
}

/* One (entry, KV head): online softmax over the sequence's cached positions for each query
 * head that shares the KV head, a run of up to OP_ATTEND_MAX_RUN positions of one KV block at a
 * time. The heads of a group take turns on each run, so the run's keys and values are read
 * from memory once and from L1 by the other heads (prefill attention: 6% of a 1B pp512's time,
 * most of it waiting on those loads). Each head's float steps are the same as alone. */
static void attention_task(void *ctx, int task, int n_tasks) {
    (void)n_tasks;
    const attention_job *j = ctx;
    const model_config *c = &j->fs->m->cfg;
    const int hd = c->head_dim, heads = c->n_heads, group = heads / c->n_kv_heads;
    const int i = task / c->n_kv_heads, kvh = task % c->n_kv_heads, h0 = kvh * group;
    const batch_entry *e = &j->batch[i];
    const float *q = j->fs->q + ((size_t)i * heads + h0) * hd;
    float *out = j->fs->att + ((size_t)i * heads + h0) * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    const int bs = kv_cache_block_size(j->kv);
    int start = 0;
    if (c->sliding_window > 0 && e->pos - c->sliding_window + 1 > 0)
        start = e->pos - c->sliding_window + 1;
    float acc[MAX_GROUP_FLOATS] __attribute__((aligned(32)));
    float max[MAX_GROUP], sum[MAX_GROUP];
    memset(acc, 0, (size_t)(group * hd) * sizeof(float));
    for (int g = 0; g < group; g++) {
        max[g] = -INFINITY;
        sum[g] = 0;
    }
    for (int p = start; p <= e->pos;) {
        int in_block = p % bs, run = bs - in_block;
        if (run > e->pos + 1 - p) run = e->pos + 1 - p;
        if (run > OP_ATTEND_MAX_RUN) run = OP_ATTEND_MAX_RUN;
        int block = kv_block_of(j->kv, e->seq, p);
        if (kv_block_quantized(j->kv, block)) {
            for (int g = 0; g < group; g++)
                attend_quantized(j, block, in_block, run, kvh, q + g * hd, scale, acc + g * hd,
                                 &max[g], &sum[g]);
        } else {
            const float *k = kv_k(j->kv, block, j->layer, kvh) + (size_t)in_block * hd;
            const float *v = kv_v(j->kv, block, j->layer, kvh) + (size_t)in_block * hd;
            for (int g = 0; g < group; g++)
                op_attend(acc + g * hd, &max[g], &sum[g], q + g * hd, k, v, run, hd, scale);
        }
        p += run;
    }
    for (int g = 0; g < group; g++)
        for (int d = 0; d < hd; d++) out[g * hd + d] = acc[g * hd + d] / sum[g];
}

/* The per-token steps between matmuls, run over chunks of the batch on all threads (a prompt
 * chunk of 512 tokens would otherwise leave the other cores idle through them). */
typedef struct token_job {
    forward_state *fs;
    kv_cache *kv;
    const batch_entry *batch;
    const float *norm; /* attn_norm or ffn_norm */
    int layer, n;
    void (*step)(const struct token_job *j, int i);
} token_job;

static void token_task(void *ctx, int task, int n_tasks) {
    const token_job *j = ctx;
    for (int i = task * j->n / n_tasks; i < (task + 1) * j->n / n_tasks; i++) j->step(j, i);
}

static void per_token(token_job *j, int n, void (*step)(const token_job *, int)) {
    j->n = n;
    j->step = step;
    int chunks = 4 * pool_size(j->fs->pool);
    pool_run(j->fs->pool, token_task, j, n < chunks ? n : chunks);
}

static void norm_step(const token_job *j, int i) { /* xb = rmsnorm(x) */
    const model_config *c = &j->fs->m->cfg;
    op_rmsnorm(j->fs->xb + (size_t)i * c->dim, j->fs->x + (size_t)i * c->dim, j->norm, c->dim,
               c->norm_eps);
}

static void residual_step(const token_job *j, int i) { /* x += xb */
    const int dim = j->fs->m->cfg.dim;
    op_add(j->fs->x + (size_t)i * dim, j->fs->xb + (size_t)i * dim, dim);
}

static void silu_step(const token_job *j, int i) { /* hb = silu(hb) * hb2 */
    const size_t h = (size_t)j->fs->m->cfg.hidden_dim;
    op_silu_mul(j->fs->hb + i * h, j->fs->hb2 + i * h, (int)h);
}

/* q/k norms (Qwen3), rotary embedding, then K and V into the cache. */
static void rope_store_step(const token_job *j, int i) {
    const model_config *c = &j->fs->m->cfg;
    const layer_weights *w = &j->fs->m->layers[j->layer];
    const int hd = c->head_dim, q_dim = c->n_heads * hd, kv_dim = c->n_kv_heads * hd;
    float *q = j->fs->q + (size_t)i * q_dim, *k = j->fs->k + (size_t)i * kv_dim;
    const float *v = j->fs->v + (size_t)i * kv_dim;
    if (c->qk_norm) {
        for (int h = 0; h < c->n_heads; h++)
            op_rmsnorm(q + h * hd, q + h * hd, w->q_norm, hd, c->norm_eps);
        for (int h = 0; h < c->n_kv_heads; h++)
            op_rmsnorm(k + h * hd, k + h * hd, w->k_norm, hd, c->norm_eps);
    }
    const batch_entry *e = &j->batch[i];
    op_rope(q, c->n_heads, hd, e->pos, j->fs->m->inv_freq, c->rope_interleaved);
    op_rope(k, c->n_kv_heads, hd, e->pos, j->fs->m->inv_freq, c->rope_interleaved);
    int block = kv_block_of(j->kv, e->seq, e->pos);
    size_t slot = (size_t)(e->pos % kv_cache_block_size(j->kv)) * hd;
    for (int h = 0; h < c->n_kv_heads; h++) {
        if (kv_block_quantized(j->kv, block)) { /* quantized once, when written */
            int bits = kv_quant_bits(j->kv), group = kv_quant_group(j->kv);
            int s = e->pos % kv_cache_block_size(j->kv);
            kv_quant_store(kv_kq(j->kv, block, j->layer, h, s), k + h * hd, hd, bits, group);
            kv_quant_store(kv_vq(j->kv, block, j->layer, h, s), v + h * hd, hd, bits, group);
            continue;
        }
        memcpy(kv_k(j->kv, block, j->layer, h) + slot, k + h * hd, (size_t)hd * sizeof(float));
        memcpy(kv_v(j->kv, block, j->layer, h) + slot, v + h * hd, (size_t)hd * sizeof(float));
    }
}

static void attention_block(forward_state *fs, kv_cache *kv, const batch_entry *batch, int n,
                            int l) {
    const model_config *c = &fs->m->cfg;
    const layer_weights *w = &fs->m->layers[l];
    token_job tj = {.fs = fs, .kv = kv, .batch = batch, .norm = w->attn_norm, .layer = l};
    per_token(&tj, n, norm_step);
    linear_fused(fs, (float *[]){fs->q, fs->k, fs->v}, fs->xb, n,
                 (const weight *[]){&w->wq, &w->wk, &w->wv}, (const float *[]){w->bq, w->bk, w->bv},
                 3);
    per_token(&tj, n, rope_store_step);
    attention_job job = {.fs = fs, .kv = kv, .batch = batch, .layer = l};
    pool_run(fs->pool, attention_task, &job, n * c->n_kv_heads);
    linear(fs, fs->xb, fs->att, n, &w->wo, w->bo);
    per_token(&tj, n, residual_step);
}

static void mlp_block(forward_state *fs, int n, int l) {
    const layer_weights *w = &fs->m->layers[l];
    token_job tj = {.fs = fs, .norm = w->ffn_norm, .layer = l};
    per_token(&tj, n, norm_step);
    linear_fused(fs, (float *[]){fs->hb, fs->hb2}, fs->xb, n,
                 (const weight *[]){&w->w_gate, &w->w_up}, (const float *[]){w->b_gate, w->b_up},
                 2);
    per_token(&tj, n, silu_step);
    linear(fs, fs->xb, fs->hb, n, &w->w_down, w->b_down);
    per_token(&tj, n, residual_step);
}

static int check_batch(const forward_state *fs, const kv_cache *kv, const batch_entry *b, int n) {
    if (n < 1 || n > fs->max_batch) {
        kiln_error("batch of %d entries (at most %d)", n, fs->max_batch);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int n_blocks = 0;
        if (!kv_seq_valid(kv, b[i].seq)) {
            kiln_error("batch entry %d: sequence %d does not exist", i, b[i].seq);
            return -1;
        }
        kv_seq_blocks(kv, b[i].seq, &n_blocks);
        if (b[i].pos < 0 || b[i].pos >= n_blocks * kv_cache_block_size(kv)) {
            kiln_error("batch entry %d: position %d is not reserved", i, b[i].pos);
            return -1;
        }
        if (b[i].token < 0 || b[i].token >= fs->m->cfg.vocab_size) {
            kiln_error("token id %d is out of range (vocabulary of %d)", b[i].token,
                       fs->m->cfg.vocab_size);
            return -1;
        }
    }
    return 0;
}

int forward(forward_state *fs, kv_cache *kv, const batch_entry *batch, int n, float *out) {
    if (check_batch(fs, kv, batch, n) < 0) return -1;
    const model *m = fs->m;
    const int dim = m->cfg.dim;
    for (int i = 0; i < n; i++) op_embedding(fs->x + (size_t)i * dim, &m->embed, batch[i].token);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        attention_block(fs, kv, batch, n, l);
        mlp_block(fs, n, l);
    }
    for (int i = 0; i < n; i++) kv_seq_written(kv, batch[i].seq, batch[i].pos);
    int rows = 0;
    for (int i = 0; i < n; i++)
        if (batch[i].logits)
            op_rmsnorm(fs->xb + (size_t)rows++ * dim, fs->x + (size_t)i * dim, m->final_norm, dim,
                       m->cfg.norm_eps);
    if (rows > 0) op_matmul(fs->pool, out, fs->xb, rows, &m->lm_head);
    return rows;
}
