/*
 * run.c — `kiln run [MODEL] [--prompt T] [--chat] [sampling options]`: generates from the
 * terminal, streaming text as it is decoded. MODEL defaults to the bundled model.
 */
#include "cli/cli.h"
#include "engine/engine.h"
#include "text/text.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *usage =
    "kiln run [MODEL] [--prompt T] [--max-tokens N] [--temp X] [--top-p P] [--top-k K]\n"
    "         [--min-p P] [--repeat-penalty R] [--seed S] [--chat] [--system T]\n"
    "         [--tokenizer FILE] [--chat-template FILE] [--threads N]\n"
    "         " CLI_ENGINE_USAGE;

typedef struct run_opts {
    char *model_path; /* resolved (a deployment name becomes its model folder) */
    const char *prompt, *system, *tokenizer_path, *template_path;
    int max_tokens, threads;
    bool chat;
    sampler_params sp;
    kv_cache_opts kv; /* --kv-bits & co: a quantized KV cache */
} run_opts;

static int parse(int argc, char **argv, run_opts *o) {
    static const struct option opts[] = {{"prompt", required_argument, 0, 'p'},
                                         {"max-tokens", required_argument, 0, 'n'},
                                         {"temp", required_argument, 0, 't'},
                                         {"top-p", required_argument, 0, 'P'},
                                         {"top-k", required_argument, 0, 'k'},
                                         {"min-p", required_argument, 0, 'm'},
                                         {"repeat-penalty", required_argument, 0, 'r'},
                                         {"seed", required_argument, 0, 's'},
                                         {"chat", no_argument, 0, 'c'},
                                         {"system", required_argument, 0, 'S'},
                                         {"tokenizer", required_argument, 0, 'z'},
                                         {"chat-template", required_argument, 0, 'T'},
                                         {"threads", required_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         CLI_ENGINE_OPTIONS,
                                         {0, 0, 0, 0}};
    *o = (run_opts){.prompt = "", .max_tokens = 256};
    sampler_params_default(&o->sp);
    o->sp.temperature = 0.8f;
    o->sp.top_p = 0.95f;
    o->sp.seed = (uint64_t)time(NULL);
    int c, seed;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int rc = cli_parse_engine_option(c, optarg, &o->kv);
        if (rc < 0) return 1;
        if (rc == 0) continue;
        rc = 0;
        switch (c) {
        case 'p':
            o->prompt = optarg;
            break;
        case 'S':
            o->system = optarg;
            break;
        case 'c':
            o->chat = true;
            break;
        case 'z':
            o->tokenizer_path = optarg;
            break;
        case 'T':
            o->template_path = optarg;
            break;
        case 'n':
            rc = cli_parse_int("--max-tokens", optarg, 0, 1 << 24, &o->max_tokens);
            break;
        case 'j':
            rc = cli_parse_int("--threads", optarg, 1, 1024, &o->threads);
            break;
        case 't':
            rc = cli_parse_float("--temp", optarg, 0, 100, &o->sp.temperature);
            break;
        case 'P':
            rc = cli_parse_float("--top-p", optarg, 0, 1, &o->sp.top_p);
            break;
        case 'm':
            rc = cli_parse_float("--min-p", optarg, 0, 1, &o->sp.min_p);
            break;
        case 'r':
            rc = cli_parse_float("--repeat-penalty", optarg, 0.01, 100, &o->sp.repetition_penalty);
            break;
        case 'k':
            rc = cli_parse_int("--top-k", optarg, 0, 1 << 24, &o->sp.top_k);
            break;
        case 's':
            rc = cli_parse_int("--seed", optarg, 0, 0x7fffffff, &seed);
            o->sp.seed = (uint64_t)seed;
            break;
        default:
            return 2;
        }
        if (rc < 0) return 1;
    }
    if (optind < argc - 1) return 2;
    o->model_path = cli_model_path(optind == argc - 1 ? argv[optind] : cli_default_model());
    if (!o->model_path) return 1;
    return 0;
}

/* The prompt's token ids: plain text with BOS, or the chat template's rendering. */
static int prompt_ids(const run_opts *o, const tokenizer *tok, int32_t **ids, size_t *n) {
    if (!o->chat) return tokenizer_encode(tok, o->prompt, strlen(o->prompt), true, ids, n);
    chat_template *ct = chat_template_load(o->model_path, o->template_path);
    if (!ct) return -1;
    json_t *messages = json_array();
    if (o->system)
        json_array_append_new(messages,
                              json_pack("{s:s, s:s}", "role", "system", "content", o->system));
    json_array_append_new(messages, json_pack("{s:s, s:s}", "role", "user", "content", o->prompt));
    char *text = chat_template_render(ct, messages, NULL, true, NULL);
    json_decref(messages);
    chat_template_free(ct);
    if (!text) return -1;
    /* The template already holds the special tokens it wants (as transformers does). */
    int rc = tokenizer_encode(tok, text, strlen(text), false, ids, n);
    free(text);
    return rc;
}

static int print_token(void *ctx, int32_t token) {
    fputs(detokenizer_push(ctx, token), stdout);
    fflush(stdout);
    return 0;
}

static int run(const run_opts *o) {
    bool is_dir = is_directory(o->model_path);
    if (!is_dir && !o->tokenizer_path) {
        kiln_error("%s: a llama2.c checkpoint needs --tokenizer FILE", o->model_path);
        return -1;
    }
    model *m = model_load(o->model_path);
    tokenizer *tok = m ? tokenizer_load(is_dir ? o->model_path : o->tokenizer_path) : NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    int rc = tok ? prompt_ids(o, tok, &ids, &n_ids) : -1;
    thread_pool *pool = rc == 0 ? pool_create(o->threads) : NULL;
    kv_cache_opts ko = o->kv;
    ko.max_tokens = (int64_t)n_ids + o->max_tokens + 1;
    ko.max_seqs = 1;
    kv_cache *kv = pool ? kv_cache_create(m, &ko) : NULL;
    forward_state *fs = kv ? forward_state_create(m, 256, pool) : NULL;
    if (rc == 0 && n_ids + (size_t)o->max_tokens > (size_t)m->cfg.max_seq_len)
        log_warn("prompt (%zu tokens) + --max-tokens (%d) exceed the model's context (%d)", n_ids,
                 o->max_tokens, m->cfg.max_seq_len);
    if (fs) {
        const int32_t *eos;
        size_t n_eos = tokenizer_eos_ids(tok, &eos);
        int32_t *stop = xmalloc((n_eos + 1) * sizeof *stop);
        memcpy(stop, eos, n_eos * sizeof *stop);
        int n_stop = (int)n_eos;
        if (!is_dir) stop[n_stop++] = tokenizer_bos(tok); /* llama2.c's run.c stops at BOS */
        sampler *s = sampler_new(&o->sp, m->cfg.vocab_size);
        detokenizer *d = detokenizer_new(tok, true);
        generate_opts go = {.max_tokens = o->max_tokens, .stop_ids = stop, .n_stop = n_stop};
        rc = generate(fs, kv, kv_seq_new(kv), s, ids, (int)n_ids, &go, print_token, d) < 0 ? -1 : 0;
        fputs(detokenizer_flush(d), stdout);
        fputs("\n", stdout);
        detokenizer_free(d);
        sampler_free(s);
        free(stop);
    } else {
        rc = -1;
    }
    forward_state_free(fs);
    kv_cache_free(kv);
    pool_destroy(pool);
    free(ids);
    tokenizer_free(tok);
    model_free(m);
    return rc;
}

int cmd_run(int argc, char **argv) {
    run_opts o;
    int rc = parse(argc, argv, &o);
    if (rc == 0) rc = run(&o) == 0 ? 0 : 1;
    free(o.model_path);
    if (rc == 2) return cli_usage(usage);
    return rc == 0 ? 0 : cli_fail();
}
