/*
 * bench.c — `kiln bench MODEL [-p 512] [-n 128] [-t THREADS] [-r REPS]`: prompt processing of
 * p tokens in one pass (pp) and generation of n tokens one at a time (tg), best of REPS runs,
 * as one JSON line per test with tokens_per_s and model_bytes (bytes of weights read per
 * decoded token), so bench/ scripts can relate speed to the machine's memory bandwidth.
 * --vs-read follows each decoded token with a plain read of the same weight bytes where the
 * model holds them (model_read_weights) and adds the median over token / read pairs of the
 * decode's read rate over the plain one: both measured within the same tens of milliseconds,
 * so a shared host's minute-to-minute drift cancels out.
 */
#include "cli/cli.h"
#include "engine/engine.h"

#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *usage =
    "kiln bench MODEL [-p 512] [-n 128] [-t THREADS] [-r REPS] [--vs-read] " CLI_ENGINE_USAGE;

typedef struct bench_ctx {
    const model *m;
    forward_state *fs;
    kv_cache *kv;
    float *logits;
    int kv_bits;
    thread_pool *pool;
    bool vs_read;
    double *read_s, *ratio; /* --vs-read: per decoded token, the read's seconds and ratio */
    int pairs;
    uint64_t sink; /* the reads' checksum, so they cannot be skipped */
} bench_ctx;

/* Seconds to prefill n pseudo-random tokens into a fresh sequence. */
static double time_prefill(bench_ctx *b, int n) {
    int32_t *tokens = xmalloc((size_t)n * sizeof *tokens);
    for (int i = 0; i < n; i++)
        tokens[i] = (int32_t)((i * 7919u + 13) % (unsigned)b->m->cfg.vocab_size);
    int seq = kv_seq_new(b->kv);
    double t0 = now_seconds();
    int rc = seq < 0 ? -1 : prefill(b->fs, b->kv, seq, tokens, n, b->logits);
    double dt = now_seconds() - t0;
    kv_seq_free(b->kv, seq);
    free(tokens);
    return rc < 0 ? -1 : dt;
}

/* Seconds to decode n tokens one at a time after a one-token prompt (greedy). */
static double time_decode(bench_ctx *b, int n) {
    int seq = kv_seq_new(b->kv);
    int32_t first = 1 % b->m->cfg.vocab_size;
    if (seq < 0 || prefill(b->fs, b->kv, seq, &first, 1, b->logits) < 0) return -1;
    double dt = 0;
    for (int i = 0; i < n; i++) {
        double t0 = now_seconds();
        int32_t best = 0;
        for (int j = 1; j < b->m->cfg.vocab_size; j++)
            if (b->logits[j] > b->logits[best]) best = j;
        batch_entry e = {.token = best, .pos = i + 1, .seq = seq, .logits = true};
        if (kv_seq_reserve(b->kv, seq, i + 2) < 0 || forward(b->fs, b->kv, &e, 1, b->logits) < 0)
            return -1;
        double t1 = now_seconds();
        dt += t1 - t0;
        if (!b->vs_read) continue;
        b->sink ^= model_read_weights(b->m, b->pool);
        double read = now_seconds() - t1;
        b->read_s[b->pairs] = read;
        b->ratio[b->pairs++] = read / (t1 - t0);
    }
    kv_seq_free(b->kv, seq);
    return dt;
}

/* Multiply-adds ×2 of the matmuls in one layer stack pass of one token. */
static double layer_flops_per_token(const model *m) {
    double macs = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const layer_weights *w = &m->layers[l];
        const weight *all[] = {&w->wq, &w->wk, &w->wv, &w->wo, &w->w_gate, &w->w_up, &w->w_down};
        for (size_t i = 0; i < ARRAY_LEN(all); i++)
            macs += (double)all[i]->rows * (double)all[i]->cols;
    }
    return 2 * macs;
}

/* The FLOPs a test does per token, the count that bounds it when compute-bound: every token
 * passes the layers and attends to the positions before it; only the tokens whose logits are
 * asked for pass lm_head (a prefill: the last one; decode: each). */
static double test_flops_per_token(const model *m, int n, bool prefill) {
    const model_config *c = &m->cfg;
    double lm_head = 2 * (double)m->lm_head.rows * (double)m->lm_head.cols;
    /* scores and the weighted sum of V: 2 FLOPs each per head dimension, per position seen */
    double attention = 4.0 * c->n_layers * c->n_heads * c->head_dim * (n + 1) / 2.0;
    return layer_flops_per_token(m) + attention + (prefill ? lm_head / n : lm_head);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void report(const char *test, int n, bool prefill, double best, bench_ctx *b, int threads) {
    double tps = n / best;
    size_t bytes = model_weight_bytes(b->m);
    char vs_read[128] = "";
    if (!prefill && b->vs_read && b->pairs > 0)
        snprintf(vs_read, sizeof vs_read, ",\"plain_read_gb_per_s\":%.3f,\"decode_vs_read\":%.3f",
                 (double)bytes / median(b->read_s, b->pairs) / 1e9, median(b->ratio, b->pairs));
    printf("{\"test\":\"%s\",\"tokens_per_s\":%.3f,\"seconds\":%.4f,\"model_bytes\":%zu,"
           "\"weight_read_gb_per_s\":%.3f%s,\"flops_per_token\":%.0f,\"threads\":%d,"
           "\"isa\":\"%s\",\"activation_bits\":%d,\"kv_bits\":%d,\"kv_bytes_per_token\":%zu}\n",
           test, tps, best, bytes, tps * (double)bytes / 1e9, vs_read,
           test_flops_per_token(b->m, n, prefill), threads, compute_isa(),
           compute_activation_bits(), b->kv_bits, kv_cache_bytes_per_token(b->kv));
    fflush(stdout);
}

/* Bytes of the model's weight files (safetensors in a folder, or the one file). */
static size_t model_file_bytes(const char *path) {
    struct stat st;
    if (!is_directory(path)) return stat(path, &st) == 0 ? (size_t)st.st_size : 0;
    size_t total = 0;
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 12 || strcmp(e->d_name + len - 12, ".safetensors")) continue;
        char *f = path_join(path, e->d_name);
        if (stat(f, &st) == 0) total += (size_t)st.st_size;
        free(f);
    }
    if (d) closedir(d);
    return total;
}

/* A field of /proc/self/status in bytes (VmRSS, RssFile, RssAnon), 0 if unknown. */
static size_t proc_status_bytes(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kb = 0, len = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, len) && line[len] == ':') kb = strtoull(line + len + 1, NULL, 10);
    if (f) fclose(f);
    return kb * 1024;
}

/* Resident memory after the runs: the mapped weights (file-backed, used in place) and the
 * planned buffers (anonymous: KV cache, activations, scratch). */
static void report_memory(const char *path) {
    printf("{\"test\":\"memory\",\"model_file_bytes\":%zu,\"rss_bytes\":%zu,"
           "\"rss_file_bytes\":%zu,\"rss_anon_bytes\":%zu}\n",
           model_file_bytes(path), proc_status_bytes("VmRSS"), proc_status_bytes("RssFile"),
           proc_status_bytes("RssAnon"));
    fflush(stdout);
}

int cmd_bench(int argc, char **argv) {
    static const struct option opts[] = {
        CLI_ENGINE_OPTIONS, {"vs-read", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    int p = 512, n = 128, threads = 0, reps = 2, c;
    bool vs_read = false;
    kv_cache_opts ko = {0};
    while ((c = getopt_long(argc, argv, "p:n:t:r:h", opts, NULL)) != -1) {
        int kv = cli_parse_engine_option(c, optarg, &ko);
        if (kv < 0) return cli_fail();
        if (kv == 0) continue;
        if (c == 'V') {
            vs_read = true;
            continue;
        }
        if ((c == 'p' && cli_parse_int("-p", optarg, 0, 1 << 20, &p) < 0) ||
            (c == 'n' && cli_parse_int("-n", optarg, 0, 1 << 20, &n) < 0) ||
            (c == 't' && cli_parse_int("-t", optarg, 1, 1024, &threads) < 0) ||
            (c == 'r' && cli_parse_int("-r", optarg, 1, 100, &reps) < 0))
            return cli_fail();
        if (c == 'h' || c == '?') return cli_usage(usage);
    }
    if (optind != argc - 1) return cli_usage(usage);
    char *path = cli_model_path(argv[optind]);
    model *m = path ? model_load(path) : NULL;
    free(path);
    if (!m) return cli_fail();
    thread_pool *pool = pool_create(threads);
    int batch = p > 0 ? (p < 512 ? p : 512) : 1;
    ko.max_tokens = (p > n + 1 ? p : n + 1) + 16;
    ko.max_seqs = 2;
    bench_ctx b = {.m = m, .kv = kv_cache_create(m, &ko), .kv_bits = ko.bits, .pool = pool};
    if (vs_read && n > 0) {
        b.vs_read = true;
        b.read_s = xmalloc((size_t)reps * (size_t)n * sizeof *b.read_s);
        b.ratio = xmalloc((size_t)reps * (size_t)n * sizeof *b.ratio);
    }
    b.fs = b.kv ? forward_state_create(m, batch, pool) : NULL;
    b.logits = aligned_buffer((size_t)m->cfg.vocab_size * sizeof(float));
    int rc = b.fs && b.logits ? 0 : -1;
    for (int test = 0; test < 2 && rc == 0; test++) {
        int count = test == 0 ? p : n;
        if (count == 0) continue;
        double best = -1;
        for (int r = 0; r < reps && rc == 0; r++) {
            double dt = test == 0 ? time_prefill(&b, count) : time_decode(&b, count);
            if (dt < 0)
                rc = -1;
            else if (best < 0 || dt < best)
                best = dt;
        }
        char name[32];
        snprintf(name, sizeof name, "%s%d", test == 0 ? "pp" : "tg", count);
        if (rc == 0) report(name, count, test == 0, best, &b, pool_size(pool));
    }
    if (rc == 0) report_memory(argv[optind]);
    free(b.read_s);
    free(b.ratio);
    aligned_free(b.logits);
    forward_state_free(b.fs);
    kv_cache_free(b.kv);
    pool_destroy(pool);
    model_free(m);
    return rc == 0 ? 0 : cli_fail();
}
