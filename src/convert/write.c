/*
 * write.c — writes the planned shards: each a safetensors file (8-byte header length, a JSON
 * header with {"format": "mlx"} metadata, then the data in plan order), its tensors produced one
 * at a time (quantized with MLX's rule, dequantized, cast or copied) so memory holds one tensor's
 * output; the source pages are dropped from the mapping after each.
 */
#include "convert/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *st_dtype(enum dtype t) {
    return dtype_name(t); /* safetensors spells them as kiln does */
}

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

int write_shards(const convert_opts *o, const plan *p, const char *dir, json_t *weight_map) {
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
            if (convert_interrupted) {
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
