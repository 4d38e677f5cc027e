/*
 * files.c — the small files of a converted model: config.json (the quantization block and its
 * quantization_config copy), model.safetensors.index.json, the tokenizer and chat template
 * files copied from SRC, and removing a temporary folder.
 */
#include "convert/internal.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int write_config(const convert_opts *o, const json_t *src_cfg, const plan *p, const char *dir) {
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

int write_index(const plan *p, json_t *weight_map, const char *dir) {
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
        if (convert_ends_with(name, suffixes[i])) return true;
    return false;
}

int copy_files(const char *src, const char *dir) {
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

void remove_tree(const char *path) {
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
