/*
 * serve.c — `kiln serve MODEL [options]` and `kiln serve --config deploy/NAME/config.json`:
 * fills a server_config from a deployment config (the toolkit's schema, DESIGN.md §5) and
 * then from the command line (flags win), and runs the server until SIGTERM/SIGINT.
 */
#include "cli/cli.h"
#include "server/server.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage =
    "kiln serve MODEL [--host H] [--port P] [--model-id ID] [--api-key K] [--threads N]\n"
    "         [--ctx N] [--parallel N] [--batch N] [--kv-tokens N] [--prompt-cache-size N]\n"
    "         [--prompt-cache-bytes B] [--chat-template FILE] [--tokenizer PATH]\n"
    "         [--cors-origin O[,O...]] [--max-body B] [--max-connections N] [--timeout S]\n"
    "         [--grace S] [--queue N] [--max-n N] [--temp X] [--top-p P] [--top-k K]\n"
    "         [--min-p P] [--repetition-penalty R] [--max-tokens N] [--seed S]\n"
    "         [--sse-keepalive S] " CLI_ENGINE_USAGE "\n"
    "   or: kiln serve --config deploy/NAME/config.json [options above]";

enum {
    O_HOST = 256,
    O_PORT,
    O_MODEL_ID,
    O_API_KEY,
    O_THREADS,
    O_CTX,
    O_PARALLEL,
    O_BATCH,
    O_KV_TOKENS,
    O_PC_SIZE,
    O_PC_BYTES,
    O_TEMPLATE,
    O_TOKENIZER,
    O_CORS,
    O_MAX_BODY,
    O_MAX_CONN,
    O_TIMEOUT,
    O_GRACE,
    O_QUEUE,
    O_MAX_N,
    O_TEMP,
    O_TOP_P,
    O_TOP_K,
    O_MIN_P,
    O_REP,
    O_MAX_TOKENS,
    O_SEED,
    O_CONFIG,
    O_KEEPALIVE,
    O_HELP
};

static const struct option options[] = {{"host", 1, 0, O_HOST},
                                        {"port", 1, 0, O_PORT},
                                        {"model-id", 1, 0, O_MODEL_ID},
                                        {"api-key", 1, 0, O_API_KEY},
                                        {"threads", 1, 0, O_THREADS},
                                        {"ctx", 1, 0, O_CTX},
                                        {"parallel", 1, 0, O_PARALLEL},
                                        {"batch", 1, 0, O_BATCH},
                                        {"kv-tokens", 1, 0, O_KV_TOKENS},
                                        {"prompt-cache-size", 1, 0, O_PC_SIZE},
                                        {"prompt-cache-bytes", 1, 0, O_PC_BYTES},
                                        {"chat-template", 1, 0, O_TEMPLATE},
                                        {"tokenizer", 1, 0, O_TOKENIZER},
                                        {"cors-origin", 1, 0, O_CORS},
                                        {"max-body", 1, 0, O_MAX_BODY},
                                        {"max-connections", 1, 0, O_MAX_CONN},
                                        {"timeout", 1, 0, O_TIMEOUT},
                                        {"grace", 1, 0, O_GRACE},
                                        {"queue", 1, 0, O_QUEUE},
                                        {"max-n", 1, 0, O_MAX_N},
                                        {"temp", 1, 0, O_TEMP},
                                        {"temperature", 1, 0, O_TEMP},
                                        {"top-p", 1, 0, O_TOP_P},
                                        {"top-k", 1, 0, O_TOP_K},
                                        {"min-p", 1, 0, O_MIN_P},
                                        {"repetition-penalty", 1, 0, O_REP},
                                        {"max-tokens", 1, 0, O_MAX_TOKENS},
                                        {"seed", 1, 0, O_SEED},
                                        {"config", 1, 0, O_CONFIG},
                                        {"sse-keepalive", 1, 0, O_KEEPALIVE},
                                        CLI_ENGINE_OPTIONS,
                                        {"help", 0, 0, O_HELP},
                                        {0, 0, 0, 0}};

typedef struct serve_args {
    server_config c;
    json_t *defaults; /* per-request defaults: the config's "parameters", then flags */
    json_t *config;
    char *model_path_owned;
} serve_args;

static void warn_unknown(const json_t *obj, const char *where, const char *const *known, size_t n) {
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        bool ok = false;
        for (size_t i = 0; i < n && !ok; i++) ok = !strcmp(key, known[i]);
        if (!ok) log_warn("%s: unknown field \"%s\" is ignored", where, key);
    }
}

/* A relative model_path is tried from the current directory, then from the config's folder,
 * then from the folder that holds deploy/ (the toolkit's layout: deploy/NAME/config.json). */
static char *resolve_model_path(const char *config_path, const char *model_path) {
    if (model_path[0] == '/' || path_exists(model_path)) return xstrdup(model_path);
    char *dir = path_dirname(config_path);
    char *p = path_join(dir, model_path);
    if (!path_exists(p)) {
        free(p);
        char *up = xasprintf("%s/../..", dir);
        p = path_join(up, model_path);
        free(up);
        if (!path_exists(p)) {
            free(p);
            p = xstrdup(model_path); /* let model_load report it */
        }
    }
    free(dir);
    return p;
}

static int get_int_field(const json_t *o, const char *key, const char *where, int *out) {
    long long v;
    int rc = json_get_int(o, key, &v);
    if (rc < 0 || (rc == 0 && (v < 0 || v > INT32_MAX))) {
        kiln_error("%s: \"%s\" must be a non-negative integer", where, key);
        return -1;
    }
    if (rc == 0) *out = (int)v;
    return 0;
}

static int load_config(serve_args *a, const char *path) {
    json_t *cfg = a->config = json_load_path(path);
    if (!cfg) return -1;
    if (!json_is_object(cfg)) {
        kiln_error("%s: the deployment config must be a JSON object", path);
        return -1;
    }
    static const char *const top[] = {"name",     "display_name", "model_path",  "parameters",
                                      "kv_cache", "server",       "description", "service"};
    warn_unknown(cfg, path, top, ARRAY_LEN(top));
    const char *model_path = NULL, *name = NULL;
    if (json_get_string(cfg, "model_path", &model_path) != 0) {
        kiln_error("%s: \"model_path\" (a string) is required", path);
        return -1;
    }
    if (json_get_string(cfg, "name", &name) < 0) return -1;
    a->c.model_path = a->model_path_owned = resolve_model_path(path, model_path);
    if (name) a->c.model_id = name;
    json_t *params = json_object_get(cfg, "parameters");
    if (params && !json_is_object(params)) {
        kiln_error("%s: \"parameters\" must be an object", path);
        return -1;
    }
    if (params) {
        static const char *const known[] = {"temp",
                                            "temperature",
                                            "top_p",
                                            "top_k",
                                            "min_p",
                                            "max_tokens",
                                            "repetition_penalty",
                                            "presence_penalty",
                                            "frequency_penalty",
                                            "seed"};
        warn_unknown(params, "parameters", known, ARRAY_LEN(known));
        const char *key;
        json_t *v;
        json_object_foreach(params, key, v) {
            for (size_t i = 0; i < ARRAY_LEN(known); i++)
                if (!strcmp(key, known[i])) json_object_set(a->defaults, key, v);
        }
    }
    json_t *kv = json_object_get(cfg, "kv_cache");
    if (kv && !json_is_object(kv)) {
        kiln_error("%s: \"kv_cache\" must be an object", path);
        return -1;
    }
    if (kv) {
        static const char *const known[] = {"bits", "group_size", "quantized_start"};
        warn_unknown(kv, "kv_cache", known, ARRAY_LEN(known));
        int bits = 0, gs = 0, start = 0;
        if (get_int_field(kv, "bits", path, &bits) < 0 ||
            get_int_field(kv, "group_size", path, &gs) < 0 ||
            get_int_field(kv, "quantized_start", path, &start) < 0)
            return -1;
        if (bits == 4 || bits == 8) {
            a->c.sched.kv.bits = bits;
            a->c.sched.kv.group_size = gs;
            a->c.sched.kv.quantized_start = start;
        } else if (bits != 0) {
            log_warn("%s: kv_cache.bits %d is not supported (4 or 8): using an unquantized KV "
                     "cache",
                     path, bits);
        }
    }
    json_t *srv = json_object_get(cfg, "server");
    if (srv && !json_is_object(srv)) {
        kiln_error("%s: \"server\" must be an object", path);
        return -1;
    }
    if (srv) {
        static const char *const known[] = {
            "host",        "port",         "model_id", "trust_remote_code", "prompt_cache_size",
            "api_key",     "parallel",     "ctx",      "threads",           "prompt_cache_bytes",
            "cors_origin", "chat_template"};
        warn_unknown(srv, "server", known, ARRAY_LEN(known));
        long long pcb = 0;
        if (json_get_string(srv, "host", &a->c.host) < 0 ||
            get_int_field(srv, "port", path, &a->c.port) < 0 ||
            json_get_string(srv, "model_id", &a->c.model_id) < 0 ||
            get_int_field(srv, "prompt_cache_size", path, &a->c.sched.prompt_cache_size) < 0 ||
            json_get_string(srv, "api_key", &a->c.api_key) < 0 ||
            get_int_field(srv, "parallel", path, &a->c.sched.max_seqs) < 0 ||
            get_int_field(srv, "ctx", path, &a->c.sched.ctx) < 0 ||
            get_int_field(srv, "threads", path, &a->c.threads) < 0 ||
            json_get_int(srv, "prompt_cache_bytes", &pcb) < 0 ||
            json_get_string(srv, "cors_origin", &a->c.cors_origin) < 0 ||
            json_get_string(srv, "chat_template", &a->c.chat_template_path) < 0) {
            kiln_error_prefix("%s: server: ", path);
            return -1;
        }
        a->c.sched.prompt_cache_bytes = pcb > 0 ? (size_t)pcb : 0;
    }
    return 0;
}

static int parse_size(const char *opt, const char *text, size_t *out) {
    char *end;
    double v = strtod(text, &end);
    double mul = 1;
    if (*end == 'k' || *end == 'K')
        mul = 1024, end++;
    else if (*end == 'm' || *end == 'M')
        mul = 1024 * 1024, end++;
    else if (*end == 'g' || *end == 'G')
        mul = 1024.0 * 1024 * 1024, end++;
    if (end == text || *end || v < 0) {
        kiln_error("%s: \"%s\" is not a size (bytes, or with K, M, G)", opt, text);
        return -1;
    }
    *out = (size_t)(v * mul);
    return 0;
}

static int set_default_number(serve_args *a, const char *key, const char *opt, const char *text,
                              double lo, double hi) {
    float v;
    if (cli_parse_float(opt, text, lo, hi, &v) < 0) return -1;
    json_object_del(a->defaults, "temp");
    json_object_set_new(a->defaults, key, json_real(v));
    return 0;
}

static int set_default_int(serve_args *a, const char *key, const char *opt, const char *text,
                           long long lo, long long hi) {
    int v;
    if (cli_parse_int(opt, text, lo, hi, &v) < 0) return -1;
    json_object_set_new(a->defaults, key, json_integer(v));
    return 0;
}

static int parse_option(serve_args *a, int c, const char *v) {
    server_config *s = &a->c;
    switch (c) {
    case O_HOST:
        s->host = v;
        return 0;
    case O_PORT:
        return cli_parse_int("--port", v, 0, 65535, &s->port);
    case O_MODEL_ID:
        s->model_id = v;
        return 0;
    case O_API_KEY:
        s->api_key = v;
        return 0;
    case O_THREADS:
        return cli_parse_int("--threads", v, 1, 1024, &s->threads);
    case O_CTX:
        return cli_parse_int("--ctx", v, 16, 1 << 24, &s->sched.ctx);
    case O_PARALLEL:
        return cli_parse_int("--parallel", v, 1, 1024, &s->sched.max_seqs);
    case O_BATCH:
        return cli_parse_int("--batch", v, 1, 1 << 16, &s->sched.max_batch);
    case O_KV_TOKENS: {
        int t;
        if (cli_parse_int("--kv-tokens", v, 16, INT32_MAX, &t) < 0) return -1;
        s->sched.kv_tokens = t;
        return 0;
    }
    case O_PC_SIZE:
        return cli_parse_int("--prompt-cache-size", v, 0, 1 << 20, &s->sched.prompt_cache_size);
    case O_PC_BYTES:
        return parse_size("--prompt-cache-bytes", v, &s->sched.prompt_cache_bytes);
    case O_TEMPLATE:
        s->chat_template_path = v;
        return 0;
    case O_TOKENIZER:
        s->tokenizer_path = v;
        return 0;
    case O_CORS:
        s->cors_origin = v;
        return 0;
    case O_MAX_BODY:
        return parse_size("--max-body", v, &s->max_body_bytes);
    case O_MAX_CONN:
        return cli_parse_int("--max-connections", v, 1, 1 << 16, &s->max_connections);
    case O_TIMEOUT:
        return cli_parse_int("--timeout", v, 1, 86400, &s->timeout_s);
    case O_GRACE:
        return cli_parse_int("--grace", v, 0, 86400, &s->grace_s);
    case O_QUEUE:
        return cli_parse_int("--queue", v, 1, 1 << 20, &s->sched.max_queue);
    case O_KEEPALIVE:
        return cli_parse_int("--sse-keepalive", v, 1, 3600, &s->keepalive_s);
    case O_MAX_N:
        return cli_parse_int("--max-n", v, 1, 128, &s->max_n);
    case O_TEMP:
        return set_default_number(a, "temperature", "--temp", v, 0, 2);
    case O_TOP_P:
        return set_default_number(a, "top_p", "--top-p", v, 0, 1);
    case O_MIN_P:
        return set_default_number(a, "min_p", "--min-p", v, 0, 1);
    case O_REP:
        return set_default_number(a, "repetition_penalty", "--repetition-penalty", v, 1e-3, 100);
    case O_TOP_K:
        return set_default_int(a, "top_k", "--top-k", v, -1, 1 << 20);
    case O_MAX_TOKENS:
        return set_default_int(a, "max_tokens", "--max-tokens", v, 1, INT32_MAX);
    case O_SEED:
        return set_default_int(a, "seed", "--seed", v, 0, INT32_MAX);
    default: /* --kv-bits & co (flags win over the config's kv_cache), --activation-bits */
        return cli_parse_engine_option(c, v, &s->sched.kv) < 0 ? -1 : 0;
    }
}

int cmd_serve(int argc, char **argv) {
    serve_args a = {.defaults = json_object()};
    a.c.port = 8000;
    a.c.grace_s = 10;
    a.c.sched.prompt_cache_size = 16;
    int rc = 2;
    /* The config first (whatever its position), so the flags can override it. */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--config") || !strncmp(argv[i], "--config=", 9)) {
            const char *path = argv[i][8] == '=' ? argv[i] + 9 : i + 1 < argc ? argv[i + 1] : NULL;
            if (!path) goto usage;
            if (load_config(&a, path) < 0) goto fail;
        }
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        if (c == 'h' || c == O_HELP) {
            printf("usage: %s\n", usage);
            rc = 0;
            goto done;
        }
        if (c == '?') goto usage;
        if (parse_option(&a, c, optarg) < 0) goto fail;
    }
    if (optind < argc) {
        if (a.c.model_path || optind != argc - 1) goto usage;
        a.c.model_path = argv[optind];
    }
    if (!a.c.model_path) goto usage;
    if (!path_exists(a.c.model_path)) {
        kiln_error("model \"%s\" not found", a.c.model_path);
        goto fail;
    }
    /* The defaults are checked now, not at the first request. */
    a.c.defaults = a.defaults;
    if (server_check_defaults(a.defaults) < 0) goto fail;
    if (json_object_size(a.defaults)) {
        char *text = json_dumps(a.defaults, JSON_COMPACT);
        log_info("request defaults: %s", text);
        free(text);
    }
    rc = server_run(&a.c) < 0 ? cli_fail() : 0;
    goto done;
usage:
    rc = cli_usage(usage);
    goto done;
fail:
    rc = cli_fail();
done:
    json_decref(a.defaults);
    json_decref(a.config);
    free(a.model_path_owned);
    return rc;
}
