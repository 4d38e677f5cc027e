/*
 * bench.c — `kiln bench MODEL [-p 512] [-n 128] [-t THREADS] [-r REPS]`: prompt processing of
 * p tokens in one pass (pp) and generation of n tokens one at a time (tg), best of REPS runs,
 * as one JSON line per test with tokens_per_s and model_bytes (bytes of weights read per
 * decoded token), so bench/ scripts can relate speed to the machine's memory bandwidth.
 */
#include "cli/cli.h"
#include "engine/engine.h"

#include <getopt.h>
#include <stdio.h>

static const char *usage = "kiln bench MODEL [-p 512] [-n 128] [-t THREADS] [-r REPS]";

typedef struct bench_ctx {
    const model *m;
    forward_state *fs;
    kv_cache *kv;
    float *logits;
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
    double t0 = now_seconds();
    for (int i = 0; i < n; i++) {
        int32_t best = 0;
        for (int j = 1; j < b->m->cfg.vocab_size; j++)
            if (b->logits[j] > b->logits[best]) best = j;
        batch_entry e = {.token = best, .pos = i + 1, .seq = seq, .logits = true};
        if (kv_seq_reserve(b->kv, seq, i + 2) < 0 || forward(b->fs, b->kv, &e, 1, b->logits) < 0)
            return -1;
    }
    double dt = now_seconds() - t0;
    kv_seq_free(b->kv, seq);
    return dt;
}

/* Multiply-adds ×2 of the matmuls one token needs (the FLOP count that bounds prefill). */
static double matmul_flops_per_token(const model *m) {
    double macs = (double)m->lm_head.rows * (double)m->lm_head.cols;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const layer_weights *w = &m->layers[l];
        const weight *all[] = {&w->wq, &w->wk, &w->wv, &w->wo, &w->w_gate, &w->w_up, &w->w_down};
        for (size_t i = 0; i < ARRAY_LEN(all); i++)
            macs += (double)all[i]->rows * (double)all[i]->cols;
    }
    return 2 * macs;
}

static void report(const char *test, int n, double best, const model *m, int threads) {
    double tps = n / best;
    size_t bytes = model_weight_bytes(m);
    printf("{\"test\":\"%s\",\"tokens_per_s\":%.3f,\"seconds\":%.4f,\"model_bytes\":%zu,"
           "\"weight_read_gb_per_s\":%.3f,\"matmul_flops_per_token\":%.0f,\"threads\":%d,"
           "\"isa\":\"%s\"}\n",
           test, tps, best, bytes, tps * (double)bytes / 1e9, matmul_flops_per_token(m), threads,
           compute_isa());
    fflush(stdout);
}

int cmd_bench(int argc, char **argv) {
    int p = 512, n = 128, threads = 0, reps = 2, c;
    while ((c = getopt(argc, argv, "p:n:t:r:h")) != -1) {
        if ((c == 'p' && cli_parse_int("-p", optarg, 0, 1 << 20, &p) < 0) ||
            (c == 'n' && cli_parse_int("-n", optarg, 0, 1 << 20, &n) < 0) ||
            (c == 't' && cli_parse_int("-t", optarg, 1, 1024, &threads) < 0) ||
            (c == 'r' && cli_parse_int("-r", optarg, 1, 100, &reps) < 0))
            return cli_fail();
        if (c == 'h' || c == '?') return cli_usage(usage);
    }
    if (optind != argc - 1) return cli_usage(usage);
    model *m = model_load(argv[optind]);
    if (!m) return cli_fail();
    thread_pool *pool = pool_create(threads);
    int batch = p > 0 ? (p < 512 ? p : 512) : 1;
    kv_cache_opts ko = {.max_tokens = (p > n + 1 ? p : n + 1) + 16, .max_seqs = 2};
    bench_ctx b = {.m = m, .kv = kv_cache_create(m, &ko)};
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
        if (rc == 0) report(name, count, best, m, pool_size(pool));
    }
    aligned_free(b.logits);
    forward_state_free(b.fs);
    kv_cache_free(b.kv);
    pool_destroy(pool);
    model_free(m);
    return rc == 0 ? 0 : cli_fail();
}
