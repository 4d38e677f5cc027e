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

/* Refuses, with one clear line, a model whose dense weights would not fit in memory once copied
 * (the copy is anonymous memory: past what is available the OOM killer, not an error, ends it). */
static int check_memory(const model *m, weight *const *w, int n) {
    size_t dense = 0;
    for (int i = 0; i < n; i++)
        if (!weight_is_quantized(w[i])) dense += weight_bytes(w[i]);
    int64_t avail = memory_available();
    if (avail >= 0 && (double)dense > 0.95 * (double)avail) {
        const bool gb = avail >= 1000000000;
        kiln_error("%s: its dense weights need %.1f %s of memory and %.1f %s are available "
                   "(a quantized copy, kiln convert --bits 4 or 8, needs a quarter or half)",
                   m->path, (double)dense / (gb ? 1e9 : 1e6), gb ? "GB" : "MB",
                   (double)avail / (gb ? 1e9 : 1e6), gb ? "GB" : "MB");
        return -1;
    }
    return 0;
}

/* Copies the dense matmul weights into panel order (compute.h) and gives their file pages back;
 * quantized weights stay as they are. */
static int model_to_panels(model *m) {
    int n;
    weight **w = matmul_weights(m, &n);
    int rc = check_memory(m, w, n);
    const bool tied = m->embed.data == m->lm_head.data;
    thread_pool *pool = rc == 0 ? pool_create(0) : NULL;
    for (int i = 0; rc == 0 && i < n; i++) {
        if (weight_is_quantized(w[i])) continue;
        const void *src = w[i]->data;
        void *panels = weight_to_panels(w[i], pool);
        if (!panels)
            rc = -1;
        else {
            model_own(m, panels);
            mapped_drop(src, weight_bytes(w[i]));
        }
    }
    if (rc == 0 && tied) m->embed = m->lm_head; /* its file pages are gone: rows come from panels */
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
    if (m && model_to_panels(m) < 0) {
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

size_t model_weight_bytes(const model *m) {
    int n;
    /* matmul_weights hands out writable pointers; here they are only read */
    weight **w = matmul_weights((model *)m, &n);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += weight_bytes(w[i]);
    free(w);
    return total;
}
