/*
 * convert.c — `kiln convert`: a Hugging Face float model folder (one safetensors file or
 * shards) to the MLX layout, tensor by tensor. Every 2-D float `*.weight` whose input size is
 * a multiple of the group size (linear layers, the embedding, lm_head) becomes P.weight (U32
 * codes), P.scales and P.biases; everything else stays float (in --dtype when given). Output:
 * shards of at most 5 GB (model.safetensors, or model-0000i-of-0000N.safetensors as mlx-lm
 * names them), model.safetensors.index.json, config.json with the quantization block (and its
 * quantization_config copy), and the tokenizer, chat template and generation config copied.
 * It writes into OUT.kiln-tmp-PID beside OUT and renames it at the end, so an interrupted run
 * never leaves a half-written OUT. Memory: one tensor's output at a time; the source pages
 * are dropped from the mapping once a tensor is written.
 */
#include "convert/convert.h"
#include "model/model.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_SHARD_BYTES 5000000000ull

/* What becomes of one source tensor. */
typedef struct job {
    const tensor_info *src;
    const tensor_info *scales, *biases; /* --dequantize: the source's */
    char module[256];                   /* name without ".weight" */
    int bits, group;                    /* 0: written as float (or copied) */
    enum dtype out_dtype;               /* float outputs and scales/biases */
    uint64_t bytes;                     /* all its outputs */
    int shard;
    uint64_t offset; /* in its shard's data */
} job;

typedef struct plan {
    job *jobs;
    size_t n;
    int n_shards;
    uint64_t total;
} plan;

static volatile sig_atomic_t interrupted;
static void on_signal(int sig) {
    (void)sig;
    interrupted = 1;
}

static bool is_float(enum dtype t) {
    return t == DT_F32 || t == DT_F16 || t == DT_BF16;
}

static const char *st_dtype(enum dtype t) {
    return dtype_name(t); /* safetensors spells them as kiln does */
}

static bool ends_with(const char *s, const char *suffix) {
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
             (int)(strlen(t->name) - (ends_with(t->name, ".weight") ? 7 : 0)), t->name);
    j->out_dtype = is_float(t->dtype) && have_want ? want : t->dtype;
    j->bytes = t->nbytes / dtype_size(t->dtype) * dtype_size(j->out_dtype);
    if (o->dequantize) {
        if (t->dtype != DT_U32 || !ends_with(t->name, ".weight")) return 0;
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
    if (t->ndim != 2 || !is_float(t->dtype) || !ends_with(t->name, ".weight")) return 0;
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
        if (o->dequantize && (ends_with(t->name, ".scales") || ends_with(t->name, ".biases"))) {
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
static char *shard_name(const plan *p, int shard) {
    if (p->n_shards == 1) return xstrdup("model.safetensors");
    return xasprintf("model-%05d-of-%05d.safetensors", shard + 1, p->n_shards);
}

static json_t *shape_json(int64_t d0, int64_t d1, int ndim, const int64_t *shape) {
    json_t *a = json_array();
    if (ndim < 0) {
        json_array_append_new(a, json_integer(d0));
        json_array_append_new(a, json_integer(d1));
    } else
        for (int i = 0; i < ndim; i++) json_array_append_new(a, json_integer(shape[i]));
    return a;
}

static void header_entry(json_t *h, const char *name, enum dtype dt, json_t *shape, uint64_t begin,
                         uint64_t end) {
    json_t *e = json_object();
    json_object_set_new(e, "dtype", json_string(st_dtype(dt)));
    json_object_set_new(e, "shape", shape);
    json_t *offs = json_array();
    json_array_append_new(offs, json_integer((json_int_t)begin));
    json_array_append_new(offs, json_integer((json_int_t)end));
    json_object_set_new(e, "data_offsets", offs);
    json_object_set_new(h, name, e);
}

/* The header of shard s, and the weight_map entries of its tensors. */
static json_t *shard_header(const plan *p, int s, json_t *weight_map, const char *file) {
    json_t *h = json_object();
    json_t *meta = json_object();
    json_object_set_new(meta, "format", json_string("mlx"));
    json_object_set_new(h, "__metadata__", meta);
    for (size_t i = 0; i < p->n; i++) {
        const job *j = &p->jobs[i];
        if (j->shard != s) continue;
        const tensor_info *t = j->src;
        char name[300];
        if (j->bits && !j->scales) { /* quantize */
            int64_t rows = t->shape[0], cols = t->shape[1], groups = cols / j->group;
            uint64_t codes = (uint64_t)(rows * cols * j->bits / 8),
                     sb = (uint64_t)(rows * groups) * dtype_size(j->out_dtype);
            snprintf(name, sizeof name, "%s.weight", j->module);
            header_entry(h, name, DT_U32, shape_json(rows, cols * j->bits / 32, -1, NULL),
                         j->offset, j->offset + codes);
            json_object_set_new(weight_map, name, json_string(file));
            snprintf(name, sizeof name, "%s.scales", j->module);
            header_entry(h, name, j->out_dtype, shape_json(rows, groups, -1, NULL),
                         j->offset + codes, j->offset + codes + sb);
            json_object_set_new(weight_map, name, json_string(file));
            snprintf(name, sizeof name, "%s.biases", j->module);
            header_entry(h, name, j->out_dtype, shape_json(rows, groups, -1, NULL),
                         j->offset + codes + sb, j->offset + codes + 2 * sb);
            json_object_set_new(weight_map, name, json_string(file));
        } else if (j->bits) { /* dequantize */
            header_entry(h, t->name, j->out_dtype,
                         shape_json(t->shape[0], t->shape[1] * 32 / j->bits, -1, NULL), j->offset,
                         j->offset + j->bytes);
            json_object_set_new(weight_map, t->name, json_string(file));
        } else {
            header_entry(h, t->name, j->out_dtype, shape_json(0, 0, t->ndim, t->shape), j->offset,
                         j->offset + j->bytes);
            json_object_set_new(weight_map, t->name, json_string(file));
        }
    }
    return h;
}

static void store_value(void *out, enum dtype dt, int64_t i, float v) {
    if (dt == DT_F16)
        ((uint16_t *)out)[i] = f32_to_f16(v);
    else if (dt == DT_BF16)
        ((uint16_t *)out)[i] = f32_to_bf16(v);
    else
        ((float *)out)[i] = v;
}

static float round_to(enum dtype dt, float v) {
    if (dt == DT_F16) return f16_to_f32(f32_to_f16(v));
    if (dt == DT_BF16) return bf16_to_f32(f32_to_bf16(v));
    return v;
}

/* Fills out[j->bytes] with the job's outputs, in header order (codes, scales, biases). */
static void produce(const job *j, uint8_t *out) {
    const tensor_info *t = j->src;
    if (j->bits && !j->scales) {
        int64_t rows = t->shape[0], cols = t->shape[1], groups = cols / j->group;
        uint8_t *codes_out = out;
        uint8_t *scales = out + rows * cols * j->bits / 8,
                *biases = scales + rows * groups * (int64_t)dtype_size(j->out_dtype);
        float *row = xmalloc((size_t)cols * sizeof(float));
        uint8_t *codes = xmalloc((size_t)cols);
        for (int64_t r = 0; r < rows; r++) {
            to_f32(row, (const uint8_t *)t->data + (size_t)(r * cols) * dtype_size(t->dtype),
                   t->dtype, (size_t)cols);
            /* mlx-lm casts to the output dtype before quantizing */
            for (int64_t k = 0; k < cols; k++) row[k] = round_to(j->out_dtype, row[k]);
            for (int64_t g = 0; g < groups; g++) {
                float s, b;
                quant_affine_group(row + g * j->group, j->group, j->bits, codes + g * j->group, &s,
                                   &b);
                store_value(scales, j->out_dtype, r * groups + g, s);
                store_value(biases, j->out_dtype, r * groups + g, b);
            }
            affine_pack(codes, cols, j->bits, codes_out + r * cols * j->bits / 8);
        }
        free(row);
        free(codes);
    } else if (j->bits) {
        int64_t rows = t->shape[0], cols = t->shape[1] * 32 / j->bits;
        weight w = {.dtype = DT_U32,
                    .rows = rows,
                    .cols = cols,
                    .data = t->data,
                    .bits = j->bits,
                    .group_size = j->group,
                    .scale_dtype = j->scales->dtype,
                    .scales = j->scales->data,
                    .biases = j->biases->data};
        float *row = xmalloc((size_t)cols * sizeof(float));
        for (int64_t r = 0; r < rows; r++) {
            op_embedding(row, &w, r);
            for (int64_t k = 0; k < cols; k++) store_value(out, j->out_dtype, r * cols + k, row[k]);
        }
        free(row);
    } else if (j->out_dtype == t->dtype) {
        memcpy(out, t->data, t->nbytes);
    } else {
        size_t n = t->nbytes / dtype_size(t->dtype), chunk = 1 << 16;
        float *buf = xmalloc(chunk * sizeof(float));
        for (size_t i = 0; i < n; i += chunk) {
            size_t m = n - i < chunk ? n - i : chunk;
            to_f32(buf, (const uint8_t *)t->data + i * dtype_size(t->dtype), t->dtype, m);
            for (size_t k = 0; k < m; k++) store_value(out, j->out_dtype, (int64_t)(i + k), buf[k]);
        }
        free(buf);
    }
}

/* Drops a source tensor's pages from our mapping (they stay in the page cache). */
static void release_source(const void *data, size_t n) {
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)data & ~(uintptr_t)(page - 1);
    uintptr_t b = ((uintptr_t)data + n + (uintptr_t)page - 1) & ~(uintptr_t)(page - 1);
    madvise((void *)a, b - a, MADV_DONTNEED);
}

static int write_all(FILE *f, const void *p, size_t n, const char *path) {
    if (fwrite(p, 1, n, f) != n) {
        kiln_error("%s: write failed: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void progress(const convert_opts *o, size_t i, const plan *p, const job *j, uint64_t done) {
    if (o->quiet) return;
    char what[64];
    if (j->bits && !j->scales)
        snprintf(what, sizeof what, "%d-bit group %d", j->bits, j->group);
    else if (j->bits)
        snprintf(what, sizeof what, "dequantized to %s", dtype_name(j->out_dtype));
    else
        snprintf(what, sizeof what, "%s", dtype_name(j->out_dtype));
    fprintf(stderr, "kiln convert: [%zu/%zu] %3.0f%% %s -> %s\n", i + 1, p->n,
            p->total ? 100.0 * (double)done / (double)p->total : 100.0, j->src->name, what);
}

static int write_shards(const convert_opts *o, const plan *p, const char *dir, json_t *weight_map) {
    uint64_t done = 0;
    size_t next = 0;
    for (int s = 0; s < p->n_shards; s++) {
        char *file = shard_name(p, s), *path = path_join(dir, file);
        json_t *h = shard_header(p, s, weight_map, file);
        char *text = json_dumps(h, JSON_COMPACT);
        json_decref(h);
        size_t len = strlen(text), padded = (len + 7) & ~(size_t)7;
        uint8_t len_le[8];
        for (int i = 0; i < 8; i++) len_le[i] = (uint8_t)((uint64_t)padded >> (8 * i));
        FILE *f = fopen(path, "wb");
        int rc = f ? 0 : -1;
        if (!f) kiln_error("%s: %s", path, strerror(errno));
        if (rc == 0) rc = write_all(f, len_le, 8, path);
        if (rc == 0) rc = write_all(f, text, len, path);
        for (size_t i = len; rc == 0 && i < padded; i++) rc = write_all(f, " ", 1, path);
        free(text);
        for (; rc == 0 && next < p->n && p->jobs[next].shard == s; next++) {
            const job *j = &p->jobs[next];
            if (interrupted) {
                kiln_error("interrupted");
                rc = -1;
                break;
            }
            uint8_t *buf = malloc(j->bytes ? j->bytes : 1);
            if (!buf) {
                kiln_error("%s: out of memory for %llu bytes", j->src->name,
                           (unsigned long long)j->bytes);
                rc = -1;
                break;
            }
            produce(j, buf);
            rc = write_all(f, buf, j->bytes, path);
            free(buf);
            release_source(j->src->data, j->src->nbytes);
            if (j->scales) {
                release_source(j->scales->data, j->scales->nbytes);
                release_source(j->biases->data, j->biases->nbytes);
            }
            done += j->bytes;
            progress(o, next, p, j, done);
        }
        if (f && fclose(f) != 0 && rc == 0) {
            kiln_error("%s: %s", path, strerror(errno));
            rc = -1;
        }
        free(file);
        free(path);
        if (rc < 0) return -1;
    }
    return 0;
}

/* ---- config.json and the other files ---- */
static int write_json(const char *dir, const char *name, json_t *v) {
    char *text = json_dumps(v, JSON_INDENT(4) | JSON_SORT_KEYS);
    char *path = path_join(dir, name);
    size_t len = strlen(text);
    text = xrealloc(text, len + 2);
    text[len] = '\n';
    int rc = write_file_atomic(path, text, len + 1);
    free(text);
    free(path);
    return rc;
}

static int write_config(const convert_opts *o, const json_t *src_cfg, const plan *p,
                        const char *dir) {
    json_t *cfg = json_deep_copy(src_cfg);
    json_object_del(cfg, "quantization");
    json_object_del(cfg, "quantization_config");
    if (!o->dequantize) {
        json_t *q = json_object();
        json_object_set_new(q, "group_size", json_integer(o->group_size));
        json_object_set_new(q, "bits",
                            json_integer(o->recipe ? recipe_bits(o->recipe, "", 0) : o->bits));
        json_object_set_new(q, "mode", json_string("affine"));
        if (o->recipe)
            for (size_t i = 0; i < p->n; i++) {
                const job *j = &p->jobs[i];
                if (!j->bits) continue;
                json_t *e = json_object();
                json_object_set_new(e, "group_size", json_integer(j->group));
                json_object_set_new(e, "bits", json_integer(j->bits));
                json_object_set_new(q, j->module, e);
            }
        json_object_set_new(cfg, "quantization", q);
        json_object_set_new(cfg, "quantization_config", json_deep_copy(q));
    }
    int rc = write_json(dir, "config.json", cfg);
    json_decref(cfg);
    return rc;
}

static int write_index(const plan *p, json_t *weight_map, const char *dir) {
    json_t *idx = json_object(), *meta = json_object();
    json_object_set_new(meta, "total_size", json_integer((json_int_t)p->total));
    json_object_set_new(idx, "metadata", meta);
    json_object_set(idx, "weight_map", weight_map);
    int rc = write_json(dir, "model.safetensors.index.json", idx);
    json_decref(idx);
    return rc;
}

/* Tokenizer, chat template, generation config and other small files that travel along. */
static bool copied_file(const char *name) {
    if (!strcmp(name, "config.json") || !strcmp(name, "model.safetensors.index.json")) return false;
    static const char *suffixes[] = {".json", ".jinja", ".model", ".txt", ".tiktoken"};
    for (size_t i = 0; i < ARRAY_LEN(suffixes); i++)
        if (ends_with(name, suffixes[i])) return true;
    return false;
}

static int copy_files(const char *src, const char *dir) {
    DIR *d = opendir(src);
    if (!d) {
        kiln_error("%s: %s", src, strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (!copied_file(e->d_name)) continue;
        char *from = path_join(src, e->d_name), *to = path_join(dir, e->d_name), *data = NULL;
        size_t len = 0;
        if (!is_directory(from)) {
            rc = read_file(from, &data, &len);
            if (rc == 0) rc = write_file_atomic(to, data, len);
        }
        free(data);
        free(from);
        free(to);
    }
    closedir(d);
    return rc;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *path) {
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

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
