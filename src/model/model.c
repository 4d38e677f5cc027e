/*
 * model.c — loading a model from a path of either kind, and what every loaded model shares.
 */
#include "model/internal.h"

#include <string.h>

model *model_load(const char *path) {
    if (is_directory(path)) return model_load_hf(path);
    if (!path_exists(path)) {
        kiln_error("%s: no such model folder or file", path);
        return NULL;
    }
    return model_load_llama2c(path);
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
