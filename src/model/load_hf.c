/*
 * load_hf.c — a Hugging Face / MLX model folder: config.json through the architecture
 * registry, then every weight bound by its Hugging Face name and checked against the shape
 * the config implies. Linear layers may be MLX affine-quantized (P.weight U32 codes with
 * P.scales and P.biases), with per-layer overrides in config.json's quantization block.
 */
#include "model/internal.h"

#include <stdio.h>
#include <string.h>

typedef struct loader {
    model *m;
    const json_t *quant; /* config.json's quantization block, for per-layer overrides */
} loader;

static const tensor_info *find(loader *L, const char *name, bool required) {
    const tensor_info *t = tensor_store_find(L->m->store, name);
    if (!t && required) kiln_error("%s: tensor %s is missing", L->m->path, name);
    return t;
}

static void shape_text(char *buf, size_t n, const tensor_info *t) {
    int off = snprintf(buf, n, "[");
    for (int i = 0; i < t->ndim && off < (int)n; i++)
        off += snprintf(buf + off, n - (size_t)off, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (off < (int)n) snprintf(buf + off, n - (size_t)off, "]");
}

static int expect_shape(const tensor_info *t, int64_t d0, int64_t d1) {
    bool ok = d1 < 0 ? (t->ndim == 1 && t->shape[0] == d0)
                     : (t->ndim == 2 && t->shape[0] == d0 && t->shape[1] == d1);
    if (ok) return 0;
    char got[96];
    shape_text(got, sizeof got, t);
    if (d1 < 0)
        kiln_error("%s: tensor %s has shape %s, expected [%lld] (from config.json)", t->file,
                   t->name, got, (long long)d0);
    else
        kiln_error("%s: tensor %s has shape %s, expected [%lld, %lld] (from config.json)", t->file,
                   t->name, got, (long long)d0, (long long)d1);
    return -1;
}

static bool is_float(enum dtype t) {
    return t == DT_F32 || t == DT_F16 || t == DT_BF16;
}

/* Quantization of module `prefix`: the default, or its override (an object, or false). */
static int module_quant(loader *L, const char *prefix, int *bits, int *group) {
    *bits = L->m->cfg.quant_bits;
    *group = L->m->cfg.quant_group_size;
    const json_t *o = L->quant ? json_object_get(L->quant, prefix) : NULL;
    if (!o) return 0;
    if (json_is_false(o)) {
        *bits = 0;
        return 0;
    }
    long long b = *bits, g = *group;
    if (!json_is_object(o) || json_get_int(o, "bits", &b) < 0 ||
        json_get_int(o, "group_size", &g) < 0) {
        kiln_error("config.json: quantization override for %s must be false or {bits, group_size}",
                   prefix);
        return -1;
    }
    if (b != 2 && b != 3 && b != 4 && b != 5 && b != 6 && b != 8) {
        kiln_error("config.json: quantization override for %s: bits %lld not supported", prefix, b);
        return -1;
    }
    if (g != 32 && g != 64 && g != 128) {
        kiln_error("config.json: quantization override for %s: group_size %lld not supported",
                   prefix, g);
        return -1;
    }
    *bits = (int)b;
    *group = (int)g;
    return 0;
}

static int bind_quantized(loader *L, const char *prefix, const tensor_info *wt, int64_t rows,
                          int64_t cols, weight *w) {
    char name[256];
    int bits, group;
    if (module_quant(L, prefix, &bits, &group) < 0) return -1;
    if (bits == 0) {
        kiln_error("%s: %s has scales but config.json marks it unquantized", wt->file, prefix);
        return -1;
    }
    snprintf(name, sizeof name, "%s.scales", prefix);
    const tensor_info *s = find(L, name, true);
    snprintf(name, sizeof name, "%s.biases", prefix);
    const tensor_info *b = find(L, name, true);
    if (!s || !b) return -1;
    if (wt->dtype != DT_U32) {
        kiln_error("%s: tensor %s is quantized but has dtype %s (expected U32)", wt->file, wt->name,
                   dtype_name(wt->dtype));
        return -1;
    }
    if (cols % group != 0 || (cols * bits) % 32 != 0) {
        kiln_error("%s: %s: input size %lld is not a multiple of group size %d", wt->file, prefix,
                   (long long)cols, group);
        return -1;
    }
    if (expect_shape(wt, rows, cols * bits / 32) < 0 || expect_shape(s, rows, cols / group) < 0 ||
        expect_shape(b, rows, cols / group) < 0)
        return -1;
    if (!is_float(s->dtype) || s->dtype != b->dtype) {
        kiln_error("%s: %s: scales and biases must share one float dtype", s->file, prefix);
        return -1;
    }
    *w = (weight){.dtype = DT_U32,
                  .rows = rows,
                  .cols = cols,
                  .data = wt->data,
                  .bits = bits,
                  .group_size = group,
                  .scale_dtype = s->dtype,
                  .scales = s->data,
                  .biases = b->data};
    return 0;
}

/* Binds PREFIX.weight ([rows, cols], dense or quantized). Returns 1 if absent and optional. */
static int bind_linear(loader *L, const char *prefix, int64_t rows, int64_t cols, weight *w,
                       bool required) {
    char name[256];
    snprintf(name, sizeof name, "%s.weight", prefix);
    const tensor_info *t = find(L, name, required);
    if (!t) return required ? -1 : 1;
    snprintf(name, sizeof name, "%s.scales", prefix);
    if (tensor_store_find(L->m->store, name)) return bind_quantized(L, prefix, t, rows, cols, w);
    if (!is_float(t->dtype)) {
        kiln_error("%s: tensor %s has dtype %s (expected F32, F16 or BF16)", t->file, t->name,
                   dtype_name(t->dtype));
        return -1;
    }
    if (expect_shape(t, rows, cols) < 0) return -1;
    *w = (weight){.dtype = t->dtype, .rows = rows, .cols = cols, .data = t->data};
    return 0;
}

/* A small vector (norm weight or bias) as an f32 copy; *out stays NULL if absent & optional. */
static int bind_vector(loader *L, const char *name, int64_t n, float **out, bool required) {
    const tensor_info *t = find(L, name, required);
    *out = NULL;
    if (!t) return required ? -1 : 0;
    if (!is_float(t->dtype)) {
        kiln_error("%s: tensor %s has dtype %s (expected F32, F16 or BF16)", t->file, t->name,
                   dtype_name(t->dtype));
        return -1;
    }
    if (expect_shape(t, n, -1) < 0) return -1;
    *out = model_own(L->m, xmalloc((size_t)n * sizeof(float)));
    to_f32(*out, t->data, t->dtype, (size_t)n);
    return 0;
}

static int bind_layer(loader *L, int i) {
    const model_config *c = &L->m->cfg;
    layer_weights *w = &L->m->layers[i];
    const int64_t q_dim = (int64_t)c->n_heads * c->head_dim;
    const int64_t kv_dim = (int64_t)c->n_kv_heads * c->head_dim;
    char p[160], n[200];
#define NAME(fmt)   (snprintf(n, sizeof n, "model.layers.%d." fmt, i), n)
#define PREFIX(fmt) (snprintf(p, sizeof p, "model.layers.%d." fmt, i), p)
    if (bind_linear(L, PREFIX("self_attn.q_proj"), q_dim, c->dim, &w->wq, true) < 0 ||
        bind_linear(L, PREFIX("self_attn.k_proj"), kv_dim, c->dim, &w->wk, true) < 0 ||
        bind_linear(L, PREFIX("self_attn.v_proj"), kv_dim, c->dim, &w->wv, true) < 0 ||
        bind_linear(L, PREFIX("self_attn.o_proj"), c->dim, q_dim, &w->wo, true) < 0 ||
        bind_linear(L, PREFIX("mlp.gate_proj"), c->hidden_dim, c->dim, &w->w_gate, true) < 0 ||
        bind_linear(L, PREFIX("mlp.up_proj"), c->hidden_dim, c->dim, &w->w_up, true) < 0 ||
        bind_linear(L, PREFIX("mlp.down_proj"), c->dim, c->hidden_dim, &w->w_down, true) < 0)
        return -1;
    if (bind_vector(L, NAME("input_layernorm.weight"), c->dim, &w->attn_norm, true) < 0 ||
        bind_vector(L, NAME("post_attention_layernorm.weight"), c->dim, &w->ffn_norm, true) < 0)
        return -1;
    if (c->qk_norm &&
        (bind_vector(L, NAME("self_attn.q_norm.weight"), c->head_dim, &w->q_norm, true) < 0 ||
         bind_vector(L, NAME("self_attn.k_norm.weight"), c->head_dim, &w->k_norm, true) < 0))
        return -1;
    bool qkv = c->qkv_bias, o = c->o_bias, mlp = c->mlp_bias;
    if (bind_vector(L, NAME("self_attn.q_proj.bias"), q_dim, &w->bq, qkv) < 0 ||
        bind_vector(L, NAME("self_attn.k_proj.bias"), kv_dim, &w->bk, qkv) < 0 ||
        bind_vector(L, NAME("self_attn.v_proj.bias"), kv_dim, &w->bv, qkv) < 0 ||
        bind_vector(L, NAME("self_attn.o_proj.bias"), c->dim, &w->bo, o) < 0 ||
        bind_vector(L, NAME("mlp.gate_proj.bias"), c->hidden_dim, &w->b_gate, mlp) < 0 ||
        bind_vector(L, NAME("mlp.up_proj.bias"), c->hidden_dim, &w->b_up, mlp) < 0 ||
        bind_vector(L, NAME("mlp.down_proj.bias"), c->dim, &w->b_down, mlp) < 0)
        return -1;
#undef NAME
#undef PREFIX
    return 0;
}

static int bind_all(loader *L) {
    model *m = L->m;
    const model_config *c = &m->cfg;
    if (bind_linear(L, "model.embed_tokens", c->vocab_size, c->dim, &m->embed, true) < 0) return -1;
    if (c->tie_embeddings)
        m->lm_head = m->embed;
    else if (bind_linear(L, "lm_head", c->vocab_size, c->dim, &m->lm_head, true) < 0)
        return -1;
    if (bind_vector(L, "model.norm.weight", c->dim, &m->final_norm, true) < 0) return -1;
    m->layers = xcalloc((size_t)c->n_layers, sizeof *m->layers);
    for (int i = 0; i < c->n_layers; i++)
        if (bind_layer(L, i) < 0) return -1;
    return 0;
}

static int read_config(model *m, json_t **out) {
    char *path = path_join(m->path, "config.json");
    json_t *cfg = json_load_path(path);
    free(path);
    if (!cfg) return -1;
    *out = cfg;
    const char *type = NULL;
    if (!json_is_object(cfg) || json_get_string(cfg, "model_type", &type) != 0) {
        kiln_error("%s/config.json: \"model_type\" (a string) is missing", m->path);
        return -1;
    }
    const arch *a = arch_find(type);
    if (!a) return -1;
    snprintf(m->cfg.model_type, sizeof m->cfg.model_type, "%s", type);
    if (config_parse_common(cfg, &m->cfg) < 0 || a->configure(cfg, &m->cfg) < 0) {
        kiln_error_prefix("%s/", m->path);
        return -1;
    }
    return 0;
}

model *model_load_hf(const char *dir) {
    model *m = xcalloc(1, sizeof *m);
    m->path = xstrdup(dir);
    json_t *cfg = NULL;
    int rc = read_config(m, &cfg);
    if (rc == 0) m->store = tensor_store_open(dir);
    if (rc == 0 && !m->store) rc = -1;
    if (rc == 0) {
        loader L = {.m = m, .quant = json_object_get(cfg, "quantization")};
        if (!L.quant) L.quant = json_object_get(cfg, "quantization_config");
        rc = bind_all(&L);
    }
    json_decref(cfg);
    if (rc != 0) {
        model_free(m);
        return NULL;
    }
    m->inv_freq = rope_inv_freq(&m->cfg);
    return m;
}
