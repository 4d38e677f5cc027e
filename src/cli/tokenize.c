/*
 * tokenize.c — `kiln tokenize MODEL --text T [--no-special]`: prints the token ids of T as a
 * JSON array, as Hugging Face's tokenizer(T)["input_ids"] (--no-special:
 * add_special_tokens=False). MODEL is a model folder or a llama2.c tokenizer file
 * (--tokenizer PATH overrides where the tokenizer is read from).
 * Hidden, for tests: --batch FILE (a JSON array of strings: one JSON array of ids per line)
 * and --decode-batch FILE (a JSON array of id arrays: one JSON object per line with "text"
 * (decode), "skip" (decode with skip_special_tokens) and "stream" (the streaming
 * detokenizer's output joined)).
 */
#include "cli/cli.h"
#include "text/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] = "kiln tokenize MODEL --text T [--no-special] [--tokenizer PATH]";

static void print_ids(const int32_t *ids, size_t n) {
    putchar('[');
    for (size_t i = 0; i < n; i++) printf(i ? ", %d" : "%d", ids[i]);
    puts("]");
}

static int encode_batch(const tokenizer *t, const char *path, bool special) {
    json_t *list = json_load_path(path);
    if (!list) return cli_fail();
    if (!json_is_array(list)) {
        json_decref(list);
        kiln_error("%s: expected a JSON array of strings", path);
        return cli_fail();
    }
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *s = json_array_get(list, i);
        int32_t *ids;
        size_t n;
        if (!json_is_string(s) || tokenizer_encode(t, json_string_value(s), json_string_length(s),
                                                   special, &ids, &n) < 0) {
            if (!json_is_string(s)) kiln_error("%s: item %zu is not a string", path, i);
            json_decref(list);
            return cli_fail();
        }
        print_ids(ids, n);
        free(ids);
    }
    json_decref(list);
    return 0;
}

static char *stream_decode(const tokenizer *t, const int32_t *ids, size_t n) {
    detokenizer *d = detokenizer_new(t, false);
    size_t cap = 64, len = 0;
    char *out = xmalloc(cap);
    for (size_t i = 0; i <= n; i++) {
        const char *s = i < n ? detokenizer_push(d, ids[i]) : detokenizer_flush(d);
        size_t k = strlen(s);
        while (len + k + 1 > cap) cap *= 2;
        out = xrealloc(out, cap);
        memcpy(out + len, s, k);
        len += k;
    }
    out[len] = 0;
    detokenizer_free(d);
    return out;
}

static int decode_batch(const tokenizer *t, const char *path) {
    json_t *list = json_load_path(path);
    if (!list) return cli_fail();
    for (size_t i = 0; json_is_array(list) && i < json_array_size(list); i++) {
        const json_t *arr = json_array_get(list, i);
        size_t n = json_array_size(arr);
        int32_t *ids = xmalloc((n + 1) * sizeof *ids);
        for (size_t k = 0; k < n; k++) ids[k] = (int32_t)json_integer_value(json_array_get(arr, k));
        char *text = tokenizer_decode(t, ids, n, false);
        char *skip = tokenizer_decode(t, ids, n, true);
        char *stream = stream_decode(t, ids, n);
        json_t *o = json_pack("{s:s, s:s, s:s}", "text", text, "skip", skip, "stream", stream);
        char *line = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
        puts(line ? line : "null");
        free(line);
        json_decref(o);
        free(text);
        free(skip);
        free(stream);
        free(ids);
    }
    json_decref(list);
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *text = NULL, *batch = NULL, *decode = NULL, *tok_path = NULL;
    bool special = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: %s\n", USAGE);
            return 0;
        } else if (!strcmp(a, "--no-special")) {
            special = false;
        } else if (!strcmp(a, "--text") && i + 1 < argc) {
            text = argv[++i];
        } else if (!strcmp(a, "--tokenizer") && i + 1 < argc) {
            tok_path = argv[++i];
        } else if (!strcmp(a, "--batch") && i + 1 < argc) {
            batch = argv[++i];
        } else if (!strcmp(a, "--decode-batch") && i + 1 < argc) {
            decode = argv[++i];
        } else if (a[0] != '-' && !model) {
            model = a;
        } else {
            return cli_usage(USAGE);
        }
    }
    if (!model || (!text && !batch && !decode)) return cli_usage(USAGE);
    tokenizer *t = tokenizer_load(tok_path ? tok_path : model);
    if (!t) return cli_fail();
    int rc = 0;
    if (batch) {
        rc = encode_batch(t, batch, special);
    } else if (decode) {
        rc = decode_batch(t, decode);
    } else {
        int32_t *ids;
        size_t n;
        if (tokenizer_encode(t, text, strlen(text), special, &ids, &n) < 0) {
            rc = cli_fail();
        } else {
            print_ids(ids, n);
            free(ids);
        }
    }
    tokenizer_free(t);
    return rc;
}
