/*
 * logits.c — `kiln logits MODEL --tokens 1,2,3 --out F [--threads N]`: runs the token
 * sequence through the model in one batch and writes little-endian float32 logits for every
 * position, shape [n_tokens, vocab]. Needs only config.json and the weights: this is how the
 * engine's numerics are compared with reference implementations.
 */
#include "cli/cli.h"
#include "engine/engine.h"

#include <getopt.h>
#include <stdlib.h>

static const char *usage =
    "kiln logits MODEL --tokens 1,2,3 --out FILE [--threads N] " CLI_ENGINE_USAGE;

static int write_logits(const model *m, const int32_t *tokens, int n, int threads,
                        const char *out_path, kv_cache_opts ko) {
    thread_pool *pool = pool_create(threads);
    ko.max_tokens = n;
    ko.max_seqs = 1;
    kv_cache *kv = kv_cache_create(m, &ko);
    forward_state *fs = kv ? forward_state_create(m, n, pool) : NULL;
    size_t vocab = (size_t)m->cfg.vocab_size;
    float *logits = fs ? aligned_buffer((size_t)n * vocab * sizeof(float)) : NULL;
    batch_entry *batch = xcalloc((size_t)n, sizeof *batch);
    int rc = -1, seq = logits ? kv_seq_new(kv) : -1;
    if (seq >= 0 && kv_seq_reserve(kv, seq, n) == 0) {
        for (int i = 0; i < n; i++)
            batch[i] = (batch_entry){.token = tokens[i], .pos = i, .seq = seq, .logits = true};
        if (forward(fs, kv, batch, n, logits) == n)
            rc = write_file_atomic(out_path, logits, (size_t)n * vocab * sizeof(float));
    }
    free(batch);
    aligned_free(logits);
    forward_state_free(fs);
    kv_cache_free(kv);
    pool_destroy(pool);
    return rc;
}

int cmd_logits(int argc, char **argv) {
    static const struct option opts[] = {{"tokens", required_argument, 0, 't'},
                                         {"out", required_argument, 0, 'o'},
                                         {"threads", required_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         CLI_ENGINE_OPTIONS,
                                         {0, 0, 0, 0}};
    kv_cache_opts ko = {0};
    const char *tokens_text = NULL, *out = NULL;
    int threads = 0, c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int kv = cli_parse_engine_option(c, optarg, &ko);
        if (kv < 0) return cli_fail();
        if (kv == 0) continue;
        if (c == 't')
            tokens_text = optarg;
        else if (c == 'o')
            out = optarg;
        else if (c == 'j' && cli_parse_int("--threads", optarg, 1, 1024, &threads) < 0)
            return cli_fail();
        else if (c == 'h' || c == '?')
            return cli_usage(usage);
    }
    if (optind != argc - 1 || !tokens_text || !out) return cli_usage(usage);
    int32_t *tokens = NULL;
    int n = 0;
    if (cli_parse_int_list("--tokens", tokens_text, &tokens, &n) < 0) return cli_fail();
    char *path = cli_model_path(argv[optind]);
    model *m = path ? model_load(path) : NULL;
    free(path);
    int rc = m ? write_logits(m, tokens, n, threads, out, ko) : -1;
    model_free(m);
    free(tokens);
    return rc == 0 ? 0 : cli_fail();
}
