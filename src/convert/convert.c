/*
 * convert.c — `kiln convert`: a Hugging Face float model folder (one safetensors file or
 * shards) to the MLX layout, tensor by tensor. Every 2-D float `*.weight` whose input size is
 * a multiple of the group size (linear layers, the embedding, lm_head) becomes P.weight (U32
 * codes), P.scales and P.biases; everything else stays float (in --dtype when given). Output:
 * shards of at most 5 GB (model.safetensors, or model-0000i-of-0000N.safetensors as mlx-lm
 * names them), model.safetensors.index.json, config.json with the quantization block (and its
 * quantization_config copy), and the tokenizer, chat template and generation config copied.
 * It writes into OUT.kiln-tmp-PID beside OUT and renames it at the end, so an interrupted run
 * never leaves a half-written OUT. This file plans (what becomes of each tensor, which shard);
 * write.c writes the shards, files.c the small files.
 */
#include "convert/internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_SHARD_BYTES 5000000000ull

volatile sig_atomic_t convert_interrupted;
static void on_signal(int sig) {
    (void)sig;
    convert_interrupted = 1;
}

static bool is_float(enum dtype t) {
    return t == DT_F32 || t == DT_F16 || t == DT_BF16;
}

bool convert_ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static int parse_dtype_option(const char *s, enum dtype *out) {
    if (!s) return 1;
    if (!strcmp(s, "float16"))
        *out = DT_F16;
    else if (!strcmp(s, "bfloat16"))
        *out = DT_BF16;
    else if (!strcmp(s, "float32"))
        *out = DT_F32;
    else {
        kiln_error("--dtype: \"%s\" is not float16, bfloat16 or float32", s);
        return -1;
    }
    return 0;
}

/* ---- quantization settings of a quantized source (for --dequantize) ---- */
static int source_quant(const json_t *cfg, const char *module, int *bits, int *group) {
    const json_t *q = json_object_get(cfg, "quantization");
    if (!q) q = json_object_get(cfg, "quantization_config");
    long long b = 0, g = 0;
    if (!json_is_object(q) || json_get_int(q, "bits", &b) != 0 ||
        json_get_int(q, "group_size", &g) != 0) {
        kiln_error("config.json: %s is quantized but the quantization block lacks bits and "
                   "group_size",
                   module);
        return -1;
    }
    const json_t *o = json_object_get(q, module);
    if (json_is_object(o) &&
        (json_get_int(o, "bits", &b) < 0 || json_get_int(o, "group_size", &g) < 0))
        return -1;
    *bits = (int)b;
    *group = (int)g;
    return 0;
}

static uint64_t quantized_bytes(int64_t rows, int64_t cols, int bits, int group, enum dtype sd) {
    return (uint64_t)(rows * cols * bits / 8) +
           2 * (uint64_t)(rows * (cols / group)) * dtype_size(sd);
}

static int plan_job(const convert_opts *o, const json_t *cfg, const tensor_store *st,
                    enum dtype want, bool have_want, int n_layers, job *j) {
    const tensor_info *t = j->src;
    snprintf(j->module, sizeof j->module, "%.*s",
             (int)(strlen(t->name) - (convert_ends_with(t->name, ".weight") ? 7 : 0)), t->name);
    j->out_dtype = is_float(t->dtype) && have_want ? want : t->dtype;
    j->bytes = t->nbytes / dtype_size(t->dtype) * dtype_size(j->out_dtype);
    if (o->dequantize) {
        if (t->dtype != DT_U32 || !convert_ends_with(t->name, ".weight")) return 0;
        char name[300];
        snprintf(name, sizeof name, "%s.scales", j->module);
        j->scales = tensor_store_find(st, name);
        snprintf(name, sizeof name, "%s.biases", j->module);
        j->biases = tensor_store_find(st, name);
        if (!j->scales || !j->biases) return 0;
        if (source_quant(cfg, j->module, &j->bits, &j->group) < 0) return -1;
        int64_t cols = t->shape[1] * 32 / j->bits;
        if (t->ndim != 2 || j->scales->ndim != 2 || j->scales->shape[1] * j->group != cols ||
            j->scales->shape[0] != t->shape[0] || !is_float(j->scales->dtype) ||
            j->biases->dtype != j->scales->dtype) {
            kiln_error("%s: %s does not match %d-bit group %d quantization", t->file, t->name,
                       j->bits, j->group);
            return -1;
        }
        j->out_dtype = have_want ? want : j->scales->dtype;
        j->bytes = (uint64_t)(t->shape[0] * cols) * dtype_size(j->out_dtype);
        return 0;
    }
    if (t->ndim != 2 || !is_float(t->dtype) || !convert_ends_with(t->name, ".weight")) return 0;
    int bits = o->recipe ? recipe_bits(o->recipe, j->module, n_layers) : o->bits;
    if (t->shape[1] % o->group_size != 0) return 0; /* stays float, as mlx-lm leaves it */
    j->bits = bits;
    j->group = o->group_size;
    j->bytes = quantized_bytes(t->shape[0], t->shape[1], bits, o->group_size, j->out_dtype);
    return 0;
}

static int make_plan(const convert_opts *o, const json_t *cfg, const tensor_store *st, plan *p) {
    enum dtype want = DT_F32;
    int rc = parse_dtype_option(o->dtype, &want);
    if (rc < 0) return -1;
    long long n_layers = 0;
    json_get_int(cfg, "num_hidden_layers", &n_layers);
    size_t n = tensor_store_count(st);
    p->jobs = xcalloc(n ? n : 1, sizeof *p->jobs);
    uint64_t limit = o->max_shard_bytes ? o->max_shard_bytes : DEFAULT_SHARD_BYTES, in_shard = 0;
    for (size_t i = 0; i < n; i++) {
        const tensor_info *t = tensor_store_at(st, i);
        if (o->dequantize &&
            (convert_ends_with(t->name, ".scales") || convert_ends_with(t->name, ".biases"))) {
            char w[300];
            snprintf(w, sizeof w, "%.*s.weight", (int)strlen(t->name) - 7, t->name);
            const tensor_info *wt = tensor_store_find(st, w);
            if (wt && wt->dtype == DT_U32) continue; /* folded into the weight */
        }
        job *j = &p->jobs[p->n];
        j->src = t;
        if (plan_job(o, cfg, st, want, rc == 0, (int)n_layers, j) < 0) return -1;
        if (in_shard > 0 && in_shard + j->bytes > limit) {
            p->n_shards++;
            in_shard = 0;
        }
        j->shard = p->n_shards;
        j->offset = in_shard;
        in_shard += j->bytes;
        p->total += j->bytes;
        p->n++;
    }
    p->n_shards++;
    return 0;
}

/* ---- writing ---- */
static int check_opts(const convert_opts *o) {
    if (o->dequantize) return 0;
    if (o->recipe && !recipe_known(o->recipe)) {
        kiln_error("--recipe: \"%s\" is not one of mixed_2_6, mixed_3_4, mixed_3_5, mixed_3_6, "
                   "mixed_3_8, mixed_4_6, mixed_4_8",
                   o->recipe);
        return -1;
    }
    if (!o->recipe && o->bits != 2 && o->bits != 3 && o->bits != 4 && o->bits != 5 &&
        o->bits != 6 && o->bits != 8) {
        kiln_error("--bits: %d is not one of 2, 3, 4, 5, 6, 8", o->bits);
        return -1;
    }
    if (o->group_size != 32 && o->group_size != 64 && o->group_size != 128) {
        kiln_error("--group-size: %d is not one of 32, 64, 128", o->group_size);
        return -1;
    }
    return 0;
}

static int convert_into(const convert_opts *o, const char *tmp) {
    char *cfg_path = path_join(o->src, "config.json");
    json_t *cfg = json_load_path(cfg_path);
    free(cfg_path);
    if (!cfg) return -1;
    tensor_store *st = tensor_store_open(o->src);
    plan p = {0};
    json_t *weight_map = json_object();
    int rc = st ? 0 : -1;
    if (rc == 0 && !o->dequantize &&
        (json_object_get(cfg, "quantization") || json_object_get(cfg, "quantization_config"))) {
        kiln_error("%s is already quantized (convert it with --dequantize first)", o->src);
        rc = -1;
    }
    if (rc == 0) rc = make_plan(o, cfg, st, &p);
    if (rc == 0 && p.n == 0) {
        kiln_error("%s: no tensors to convert", o->src);
        rc = -1;
    }
    if (rc == 0 && mkdir(tmp, 0755) != 0) {
        kiln_error("%s: %s", tmp, strerror(errno));
        rc = -1;
    }
    if (rc == 0) rc = write_shards(o, &p, tmp, weight_map);
    if (rc == 0) rc = write_index(&p, weight_map, tmp);
    if (rc == 0) rc = write_config(o, cfg, &p, tmp);
    if (rc == 0) rc = copy_files(o->src, tmp);
    json_decref(weight_map);
    free(p.jobs);
    tensor_store_free(st);
    json_decref(cfg);
    return rc;
}

int convert_model(const convert_opts *o) {
    if (check_opts(o) < 0) return -1;
    if (!is_directory(o->src)) {
        kiln_error("%s: not a model folder", o->src);
        return -1;
    }
    if (path_exists(o->out) && !o->force) {
        kiln_error("%s already exists (use --force to replace it)", o->out);
        return -1;
    }
    char *parent = path_dirname(o->out);
    if (!is_directory(parent)) {
        kiln_error("%s: the folder %s does not exist", o->out, parent);
        free(parent);
        return -1;
    }
    free(parent);
    char *tmp = xasprintf("%s.kiln-tmp-%d", o->out, (int)getpid());
    struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    int rc = convert_into(o, tmp);
    if (rc == 0 && path_exists(o->out)) { /* --force: swap, then remove the old one */
        char *old = xasprintf("%s.kiln-old-%d", o->out, (int)getpid());
        if (rename(o->out, old) != 0) {
            kiln_error("%s: %s", o->out, strerror(errno));
            rc = -1;
        } else {
            if (rename(tmp, o->out) != 0) {
                kiln_error("%s: %s", o->out, strerror(errno));
                rename(old, o->out);
                rc = -1;
            } else
                remove_tree(old);
        }
        free(old);
    } else if (rc == 0 && rename(tmp, o->out) != 0) {
        kiln_error("%s: %s", o->out, strerror(errno));
        rc = -1;
    }
    if (rc != 0) remove_tree(tmp);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    free(tmp);
    return rc;
}
