/*
 * load_llama2c.c — llama2.c checkpoints (Karpathy's run.c format): a header of 7 int32
 * (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size
 * means the classifier is stored separately), then f32 weights in a fixed order. The weights
 * are used in place from the mmap; the file size must match the header exactly.
 */
#include "model/internal.h"

#include <string.h>

#define HEADER_INTS 7

static int check_header(const char *path, const int32_t *h, model_config *c, bool *shared) {
    for (int i = 0; i < HEADER_INTS; i++)
        if ((i != 5 && h[i] <= 0) || h[i] == 0 || h[i] > (1 << 24) || h[i] < -(1 << 24)) {
            kiln_error("%s: not a llama2.c checkpoint (header field %d is %d)", path, i, h[i]);
            return -1;
        }
    *shared = h[5] > 0;
    *c = (model_config){.dim = h[0],
                        .hidden_dim = h[1],
                        .n_layers = h[2],
                        .n_heads = h[3],
                        .n_kv_heads = h[4],
                        .vocab_size = *shared ? h[5] : -h[5],
                        .max_seq_len = h[6],
                        .norm_eps = 1e-5f,
                        .rope_theta = 10000.0f,
                        .tie_embeddings = *shared,
                        .rope_interleaved = true,
                        .bos_id = 1};
    snprintf(c->model_type, sizeof c->model_type, "llama2c");
    if (c->dim % c->n_heads != 0 || c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads ||
        (c->dim / c->n_heads) % 2 != 0) {
        kiln_error("%s: inconsistent header (dim %d, heads %d, kv heads %d)", path, c->dim,
                   c->n_heads, c->n_kv_heads);
        return -1;
    }
    c->head_dim = c->dim / c->n_heads;
    return 0;
}

/* Hands out consecutive f32 arrays from the file body. */
typedef struct cursor {
    const float *p;
} cursor;

static const float *take(cursor *cur, int64_t n) {
    const float *p = cur->p;
    cur->p += n;
    return p;
}

static weight dense(cursor *cur, int64_t rows, int64_t cols) {
    return (weight){.dtype = DT_F32, .rows = rows, .cols = cols, .data = take(cur, rows * cols)};
}

model *model_load_llama2c(const char *path) {
    model *m = xcalloc(1, sizeof *m);
    m->path = xstrdup(path);
    if (map_file(path, &m->bin) != 0) goto fail;
    if (m->bin.size < HEADER_INTS * 4) {
        kiln_error("%s: too short to be a llama2.c checkpoint (%zu bytes)", path, m->bin.size);
        goto fail;
    }
    int32_t h[HEADER_INTS];
    memcpy(h, m->bin.data, sizeof h);
    bool shared;
    if (check_header(path, h, &m->cfg, &shared) != 0) goto fail;
    const model_config *c = &m->cfg;
    const int64_t D = c->dim, F = c->hidden_dim, L = c->n_layers, V = c->vocab_size;
    const int64_t KV = (int64_t)c->n_kv_heads * c->head_dim, S = c->max_seq_len;
    int64_t floats = V * D + L * (2 * D + 2 * D * D + 2 * D * KV + 3 * D * F) + D +
                     S * c->head_dim + (shared ? 0 : V * D);
    if ((int64_t)m->bin.size != HEADER_INTS * 4 + floats * 4) {
        kiln_error("%s: file is %zu bytes but its header implies %lld (truncated or not a "
                   "llama2.c checkpoint)",
                   path, m->bin.size, (long long)(HEADER_INTS * 4 + floats * 4));
        goto fail;
    }
    cursor cur = {(const float *)(const void *)(m->bin.data + HEADER_INTS * 4)};
    m->layers = xcalloc((size_t)L, sizeof *m->layers);
    m->embed = dense(&cur, V, D);
    /* Each kind of weight is stored for all layers together. */
    for (int l = 0; l < L; l++) m->layers[l].attn_norm = (float *)take(&cur, D);
    for (int l = 0; l < L; l++) m->layers[l].wq = dense(&cur, D, D);
    for (int l = 0; l < L; l++) m->layers[l].wk = dense(&cur, KV, D);
    for (int l = 0; l < L; l++) m->layers[l].wv = dense(&cur, KV, D);
    for (int l = 0; l < L; l++) m->layers[l].wo = dense(&cur, D, D);
    for (int l = 0; l < L; l++) m->layers[l].ffn_norm = (float *)take(&cur, D);
    for (int l = 0; l < L; l++) m->layers[l].w_gate = dense(&cur, F, D);
    for (int l = 0; l < L; l++) m->layers[l].w_down = dense(&cur, D, F);
    for (int l = 0; l < L; l++) m->layers[l].w_up = dense(&cur, F, D);
    m->final_norm = (float *)take(&cur, D);
    take(&cur, S * c->head_dim); /* precomputed rope tables (real and imaginary halves) */
    m->lm_head = shared ? m->embed : dense(&cur, V, D);
    m->inv_freq = rope_inv_freq(c);
    return m;
fail:
    model_free(m);
    return NULL;
}
