/*
 * model.c — loading a model from a path of either kind, and what every loaded model shares.
 */
#include "model/internal.h"

#include <string.h>

/* The matmul weights of a model, lm_head first, then each layer's seven, in a new array (the
 * caller frees it) of *count entries. */
enum { LAYER_MATMULS = 7 };
static weight **matmul_weights(model *m, int *count) {
    weight **out = xmalloc((size_t)(1 + LAYER_MATMULS * m->cfg.n_layers) * sizeof *out);
    int n = 0;
    out[n++] = &m->lm_head;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        layer_weights *w = &m->layers[l];
        weight *all[LAYER_MATMULS] = {&w->wq,     &w->wk,   &w->wv,    &w->wo,
                                      &w->w_gate, &w->w_up, &w->w_down};
        for (int i = 0; i < LAYER_MATMULS; i++) out[n++] = all[i];
    }
    *count = n;
    return out;
}

/* Whether loading copies w into a compute layout: dense weights always (panel order), quantized
 * ones when the kernels prefer interleaved order and w can take it. */
static bool copied_at_load(const weight *w, bool interleave) {
    return !weight_is_quantized(w) || (interleave && weight_can_interleave(w));
}

/* Refuses, with one clear line, a model whose weights would not fit in memory once copied into
 * the kernels' layouts (the copy is anonymous memory: past what is available the OOM killer,
 * not an error, ends it). */
static int check_memory(const model *m, weight *const *w, int n, bool interleave) {
    size_t dense = 0, quantized = 0;
    for (int i = 0; i < n; i++) {
        if (!copied_at_load(w[i], interleave)) continue;
        if (weight_is_quantized(w[i]))
            quantized += weight_bytes(w[i]);
        else
            dense += weight_bytes(w[i]);
    }
    int64_t avail = memory_available();
    const double copied = (double)(dense + quantized);
    if (avail >= 0 && copied > 0.95 * (double)avail) {
        const bool gb = avail >= 1000000000;
        kiln_error("%s: its %s weights need %.1f %s of memory and %.1f %s are available%s", m->path,
                   dense ? "dense" : "quantized", copied / (gb ? 1e9 : 1e6), gb ? "GB" : "MB",
                   (double)avail / (gb ? 1e9 : 1e6), gb ? "GB" : "MB",
                   dense
                       ? " (a quantized copy, kiln convert --bits 4 or 8, needs a quarter or half)"
                       : "");
        return -1;
    }
    return 0;
}

/* The memory a weight's bytes live in: one block (dense, interleaved), or MLX's codes, scales
 * and biases; returns how many of out it filled. */
typedef struct region {
    const void *p;
    size_t bytes;
} region;

static int weight_regions(const weight *w, region out[3]) {
    if (!weight_is_quantized(w) || w->interleaved) {
        out[0] = (region){w->data, weight_bytes(w)};
        return 1;
    }
    const size_t scales =
        (size_t)(w->rows * (w->cols / w->group_size)) * dtype_size(w->scale_dtype);
    out[0] = (region){w->data, weight_bytes(w) - 2 * scales};
    out[1] = (region){w->scales, scales};
    out[2] = (region){w->biases, scales};
    return 3;
}

/* Gives back the file pages of weight w, now copied into a compute layout. */
static void drop_file_pages(const weight *w) {
    region r[3];
    for (int i = 0, n = weight_regions(w, r); i < n; i++) mapped_drop(r[i].p, r[i].bytes);
}

/* Copies the matmul weights into the layouts the kernels run on (compute.h): dense ones into
 * panel order, quantized ones into interleaved order where the kernels prefer it; each copy's
 * file pages are given back, so resident memory stays the model's size. */
static int model_to_compute_layout(model *m) {
    int n;
    weight **w = matmul_weights(m, &n);
    const bool interleave = compute_interleaves_quantized();
    int rc = check_memory(m, w, n, interleave);
    const bool tied = m->embed.data == m->lm_head.data;
    thread_pool *pool = rc == 0 ? pool_create(0) : NULL;
    for (int i = 0; rc == 0 && i < n; i++) {
        if (!copied_at_load(w[i], interleave)) continue;
        const weight before = *w[i];
        void *copy = weight_is_quantized(w[i]) ? weight_interleave(w[i], pool)
                                               : weight_to_panels(w[i], pool);
        if (!copy)
            rc = -1;
        else {
            model_own(m, copy);
            drop_file_pages(&before);
        }
    }
    if (rc == 0 && tied)
        m->embed = m->lm_head; /* its file pages are gone: rows come from the copy */
    pool_destroy(pool);
    free(w);
    return rc;
}

model *model_load(const char *path) {
    model *m;
    if (is_directory(path))
        m = model_load_hf(path);
    else if (!path_exists(path)) {
        kiln_error("%s: no such model folder or file", path);
        return NULL;
    } else
        m = model_load_llama2c(path);
    if (m && model_to_compute_layout(m) < 0) {
        model_free(m);
        return NULL;
    }
    return m;
}

void *model_own(model *m, void *p) {
    m->owned = xrealloc(m->owned, (m->n_owned + 1) * sizeof *m->owned);
    m->owned[m->n_owned++] = p;
    return p;
}

void model_free(model *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    free(m->inv_freq);
    free(m->path);
    tensor_store_free(m->store);
    unmap_file(&m->bin);
    free(m);
}

uint64_t model_read_weights(const model *m, thread_pool *pool) {
    int n;
    weight **w = matmul_weights((model *)m, &n); /* only read */
    uint64_t sum = 0;
    for (int i = 0; i < n; i++) {
        region r[3];
        for (int k = 0, nr = weight_regions(w[i], r); k < nr; k++)
            sum ^= op_read(pool, r[k].p, r[k].bytes, 0);
    }
    free(w);
    return sum;
}

size_t model_weight_bytes(const model *m) {
    int n;
    /* matmul_weights hands out writable pointers; here they are only read */
    weight **w = matmul_weights((model *)m, &n);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += weight_bytes(w[i]);
    free(w);
    return total;
}
