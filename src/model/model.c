/*
 * model.c — loading a model from a path of either kind, and what every loaded model shares.
 */
#include "model/internal.h"

#include <string.h>

/* Copies a dense matmul weight into panel order (compute.h) and gives its file pages back;
 * quantized weights stay as they are. */
static int to_panels(model *m, weight *w, thread_pool *pool) {
    if (weight_is_quantized(w) || w->panels) return 0;
    const void *src = w->data;
    void *panels = weight_to_panels(w, pool);
    if (!panels) return -1;
    model_own(m, panels);
    mapped_drop(src, weight_bytes(w));
    return 0;
}

static int model_to_panels(model *m) {
    thread_pool *pool = pool_create(0);
    const bool tied = m->embed.data == m->lm_head.data;
    int rc = to_panels(m, &m->lm_head, pool);
    if (tied) m->embed = m->lm_head; /* its file pages are gone: look rows up in the panels */
    for (int l = 0; rc == 0 && l < m->cfg.n_layers; l++) {
        layer_weights *w = &m->layers[l];
        weight *all[] = {&w->wq, &w->wk, &w->wv, &w->wo, &w->w_gate, &w->w_up, &w->w_down};
        for (size_t i = 0; rc == 0 && i < ARRAY_LEN(all); i++) rc = to_panels(m, all[i], pool);
    }
    pool_destroy(pool);
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
    size_t total = weight_bytes(&m->lm_head);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const layer_weights *w = &m->layers[l];
        const weight *all[] = {&w->wq, &w->wk, &w->wv, &w->wo, &w->w_gate, &w->w_up, &w->w_down};
        for (size_t i = 0; i < ARRAY_LEN(all); i++) total += weight_bytes(all[i]);
    }
    return total;
}
