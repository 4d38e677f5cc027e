/*
 * safetensors.c — reads safetensors files in place. A file is an 8-byte little-endian header
 * length, a JSON header (name -> dtype, shape, data_offsets), then the raw data. Everything in
 * the header is checked before any tensor is used, because model files come from strangers:
 * lengths past the end, offsets out of bounds or overlapping, sizes that disagree with the
 * shape, and unknown dtypes all fail with the file and tensor named.
 */
#include "model/model.h"

#include <stdlib.h>
#include <string.h>

#define MAX_HEADER_BYTES (256u << 20)

struct tensor_store {
    mapped_file *files;
    size_t n_files;
    tensor_info *tensors; /* sorted by name */
    size_t n_tensors, cap;
    json_t *metadata;
};

static const struct {
    const char *name;
    enum dtype dtype;
} dtype_names[] = {
    {"F32", DT_F32}, {"F16", DT_F16}, {"BF16", DT_BF16}, {"U32", DT_U32},
    {"I8", DT_I8},   {"U8", DT_U8},   {"I32", DT_I32},   {"I64", DT_I64},
};

static int parse_dtype(const char *s, enum dtype *out) {
    for (size_t i = 0; i < ARRAY_LEN(dtype_names); i++)
        if (!strcmp(s, dtype_names[i].name)) {
            *out = dtype_names[i].dtype;
            return 0;
        }
    return -1;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const tensor_info *)a)->name, ((const tensor_info *)b)->name);
}

static int by_data(const void *a, const void *b) {
    const uint8_t *x = ((const tensor_info *)a)->data, *y = ((const tensor_info *)b)->data;
    return x < y ? -1 : x > y;
}

/* Parses one tensor's header entry into t; `data`/`data_size` is the file's data region. */
static int parse_entry(const char *file, const char *name, const json_t *v, const uint8_t *data,
                       uint64_t data_size, tensor_info *t) {
    const json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape");
    const json_t *offs = json_object_get(v, "data_offsets");
    if (!json_is_object(v) || !json_is_string(dt) || !json_is_array(shape) ||
        !json_is_array(offs) || json_array_size(offs) != 2) {
        kiln_error("%s: tensor %s: header entry needs dtype, shape and data_offsets", file, name);
        return -1;
    }
    if (parse_dtype(json_string_value(dt), &t->dtype) != 0) {
        kiln_error("%s: tensor %s: dtype %s is not supported", file, name, json_string_value(dt));
        return -1;
    }
    size_t ndim = json_array_size(shape);
    if (ndim > 4) {
        kiln_error("%s: tensor %s: %zu dimensions (at most 4 supported)", file, name, ndim);
        return -1;
    }
    uint64_t numel = 1;
    t->ndim = (int)ndim;
    for (size_t i = 0; i < ndim; i++) {
        const json_t *d = json_array_get(shape, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0 ||
            json_integer_value(d) > ((json_int_t)1 << 40)) {
            kiln_error("%s: tensor %s: bad shape", file, name);
            return -1;
        }
        t->shape[i] = json_integer_value(d);
        if (t->shape[i] != 0 && numel > UINT64_MAX / 2 / (uint64_t)t->shape[i]) {
            kiln_error("%s: tensor %s: shape too large", file, name);
            return -1;
        }
        numel *= (uint64_t)t->shape[i];
    }
    const json_t *b = json_array_get(offs, 0), *e = json_array_get(offs, 1);
    if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
        json_integer_value(e) < json_integer_value(b) ||
        (uint64_t)json_integer_value(e) > data_size) {
        kiln_error("%s: tensor %s: data_offsets out of bounds (data is %llu bytes)", file, name,
                   (unsigned long long)data_size);
        return -1;
    }
    uint64_t begin = (uint64_t)json_integer_value(b), end = (uint64_t)json_integer_value(e);
    if (numel > UINT64_MAX / dtype_size(t->dtype) || end - begin != numel * dtype_size(t->dtype)) {
        kiln_error("%s: tensor %s: %llu bytes of data for a shape that needs %llu", file, name,
                   (unsigned long long)(end - begin),
                   (unsigned long long)(numel * dtype_size(t->dtype)));
        return -1;
    }
    t->data = data + begin;
    t->nbytes = (size_t)(end - begin);
    if (((uintptr_t)t->data % dtype_size(t->dtype)) != 0) {
        kiln_error("%s: tensor %s: data is not aligned to its %zu-byte elements", file, name,
                   dtype_size(t->dtype));
        return -1;
    }
    t->name = xstrdup(name);
    t->file = file;
    return 0;
}

static int check_overlaps(tensor_info *ts, size_t n) {
    qsort(ts, n, sizeof *ts, by_data);
    for (size_t i = 1; i < n; i++) {
        const uint8_t *prev_end = (const uint8_t *)ts[i - 1].data + ts[i - 1].nbytes;
        if ((const uint8_t *)ts[i].data < prev_end) {
            kiln_error("%s: tensors %s and %s overlap", ts[i].file, ts[i - 1].name, ts[i].name);
            return -1;
        }
    }
    return 0;
}

/* Adds every tensor of one mapped file to the store. */
static int add_file(tensor_store *s, const mapped_file *f) {
    const char *file = f->path;
    if (f->size < 8) {
        kiln_error("%s: too short to be a safetensors file (%zu bytes)", file, f->size);
        return -1;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | f->data[i];
    if (hlen > f->size - 8 || hlen > MAX_HEADER_BYTES) {
        kiln_error("%s: header length %llu runs past the end of the file (%zu bytes)", file,
                   (unsigned long long)hlen, f->size);
        return -1;
    }
    json_error_t jerr;
    json_t *h = json_loadb((const char *)f->data + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!h || !json_is_object(h)) {
        kiln_error("%s: header is not a JSON object (%s)", file, h ? "wrong type" : jerr.text);
        json_decref(h);
        return -1;
    }
    const uint8_t *data = f->data + 8 + hlen;
    uint64_t data_size = f->size - 8 - hlen;
    size_t first = s->n_tensors;
    const char *name;
    json_t *v;
    json_object_foreach(h, name, v) {
        if (!strcmp(name, "__metadata__")) {
            if (!s->metadata && json_is_object(v)) s->metadata = json_incref(v);
            continue;
        }
        if (s->n_tensors == s->cap)
            s->tensors =
                xrealloc(s->tensors, (s->cap = s->cap ? 2 * s->cap : 64) * sizeof(tensor_info));
        tensor_info *t = &s->tensors[s->n_tensors];
        memset(t, 0, sizeof *t);
        if (parse_entry(file, name, v, data, data_size, t) != 0) {
            json_decref(h);
            return -1;
        }
        s->n_tensors++;
    }
    json_decref(h);
    return check_overlaps(s->tensors + first, s->n_tensors - first);
}

static int open_files(tensor_store *s, char **paths, size_t n) {
    s->files = xcalloc(n, sizeof *s->files);
    for (size_t i = 0; i < n; i++) {
        if (map_file(paths[i], &s->files[i]) != 0) return -1;
        s->n_files++;
        if (add_file(s, &s->files[i]) != 0) return -1;
    }
    qsort(s->tensors, s->n_tensors, sizeof *s->tensors, by_name);
    for (size_t i = 1; i < s->n_tensors; i++)
        if (!strcmp(s->tensors[i].name, s->tensors[i - 1].name)) {
            kiln_error("%s: tensor %s appears twice (also in %s)", s->tensors[i].file,
                       s->tensors[i].name, s->tensors[i - 1].file);
            return -1;
        }
    return 0;
}

/* The shard files named by an index.json's weight_map, each once, in order of appearance. */
static int shard_paths(const char *dir, const char *index_path, char ***out, size_t *n_out) {
    json_t *idx = json_load_path(index_path);
    if (!idx) return -1;
    json_t *map = json_object_get(idx, "weight_map");
    if (!json_is_object(map) || json_object_size(map) == 0) {
        kiln_error("%s: \"weight_map\" must be a non-empty object", index_path);
        json_decref(idx);
        return -1;
    }
    char **paths = NULL;
    size_t n = 0;
    const char *key;
    json_t *v;
    json_object_foreach(map, key, v) {
        const char *file = json_string_value(v);
        if (!file || strchr(file, '/') || file[0] == '.') {
            kiln_error("%s: weight_map entry for %s must be a file name in the folder", index_path,
                       key);
            for (size_t i = 0; i < n; i++) free(paths[i]);
            free(paths);
            json_decref(idx);
            return -1;
        }
        char *p = path_join(dir, file);
        bool seen = false;
        for (size_t i = 0; i < n && !seen; i++) seen = !strcmp(paths[i], p);
        if (seen) {
            free(p);
            continue;
        }
        paths = xrealloc(paths, (n + 1) * sizeof *paths);
        paths[n++] = p;
    }
    json_decref(idx);
    *out = paths;
    *n_out = n;
    return 0;
}

tensor_store *tensor_store_open(const char *path) {
    tensor_store *s = xcalloc(1, sizeof *s);
    char **paths = NULL;
    size_t n = 0;
    int rc = 0;
    if (!is_directory(path)) {
        paths = xmalloc(sizeof *paths);
        paths[n++] = xstrdup(path);
    } else {
        char *single = path_join(path, "model.safetensors");
        char *index = path_join(path, "model.safetensors.index.json");
        if (path_exists(single)) {
            paths = xmalloc(sizeof *paths);
            paths[n++] = single;
            single = NULL;
        } else if (path_exists(index)) {
            rc = shard_paths(path, index, &paths, &n);
        } else {
            kiln_error("%s: no model.safetensors or model.safetensors.index.json", path);
            rc = -1;
        }
        free(single);
        free(index);
    }
    if (rc == 0) rc = open_files(s, paths, n);
    for (size_t i = 0; i < n; i++) free(paths[i]);
    free(paths);
    if (rc != 0) {
        tensor_store_free(s);
        return NULL;
    }
    return s;
}

void tensor_store_free(tensor_store *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n_tensors; i++) free((char *)s->tensors[i].name);
    free(s->tensors);
    for (size_t i = 0; i < s->n_files; i++) unmap_file(&s->files[i]);
    free(s->files);
    json_decref(s->metadata);
    free(s);
}

const tensor_info *tensor_store_find(const tensor_store *s, const char *name) {
    tensor_info key = {.name = name};
    return bsearch(&key, s->tensors, s->n_tensors, sizeof key, by_name);
}

size_t tensor_store_count(const tensor_store *s) {
    return s->n_tensors;
}

const tensor_info *tensor_store_at(const tensor_store *s, size_t i) {
    return i < s->n_tensors ? &s->tensors[i] : NULL;
}

const json_t *tensor_store_metadata(const tensor_store *s) {
    return s->metadata;
}
