/*
 * args.c — parsing option values for the verbs, each failure naming the option and the value.
 */
#include "cli/cli.h"
#include "deploy/deploy.h"
#include "engine/engine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_parse_int(const char *opt, const char *text, long long min, long long max, int *out) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max) {
        kiln_error("%s: \"%s\" is not an integer in [%lld, %lld]", opt, text, min, max);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int cli_parse_float(const char *opt, const char *text, double min, double max, float *out) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !(v >= min && v <= max)) {
        kiln_error("%s: \"%s\" is not a number in [%g, %g]", opt, text, min, max);
        return -1;
    }
    *out = (float)v;
    return 0;
}

int cli_parse_int_list(const char *opt, const char *text, int32_t **out, int *n_out) {
    int n = 0, cap = 16;
    int32_t *ids = xmalloc((size_t)cap * sizeof *ids);
    const char *p = text;
    while (*p) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (errno || end == p || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            kiln_error("%s: \"%s\" is not a comma-separated list of token ids", opt, text);
            free(ids);
            return -1;
        }
        if (n == cap) ids = xrealloc(ids, (size_t)(cap *= 2) * sizeof *ids);
        ids[n++] = (int32_t)v;
        p = *end ? end + 1 : end;
    }
    if (n == 0) {
        kiln_error("%s: no token ids given", opt);
        free(ids);
        return -1;
    }
    *out = ids;
    *n_out = n;
    return 0;
}

/* The bundled model: $KILN_MODEL, else beside an installed binary (PREFIX/share/kiln/models),
 * else in the source tree the binary was built from. */
const char *cli_default_model(void) {
    static char path[4096];
    const char *env = getenv("KILN_MODEL");
    if (env && *env) return env;
    char exe[3000];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        snprintf(path, sizeof path, "%s/../share/kiln/models/kiln-tiny", exe);
        if (is_directory(path)) return path;
    }
    return KILN_SOURCE_DIR "/models/kiln-tiny";
}

int cli_set_activation_bits(const char *text) {
    int bits;
    if (cli_parse_int("--activation-bits", text, 0, 64, &bits) < 0) return -1;
    if (bits != 8 && bits != 16) {
        kiln_error("--activation-bits: \"%s\" is not 8 or 16", text);
        return -1;
    }
    compute_set_activation_bits(bits);
    return 0;
}

int cli_parse_engine_option(int c, const char *arg, struct kv_cache_opts *o) {
    switch (c) {
    case CLI_OPT_ACT_BITS:
        return cli_set_activation_bits(arg);
    case CLI_KV_OPT_BITS:
        if (cli_parse_int("--kv-bits", arg, 0, 8, &o->bits) < 0) return -1;
        if (o->bits != 0 && o->bits != 4 && o->bits != 8) {
            kiln_error("--kv-bits: \"%s\" is not 4 or 8 (or 0 for float)", arg);
            return -1;
        }
        return 0;
    case CLI_KV_OPT_GROUP:
        return cli_parse_int("--kv-group-size", arg, 32, 128, &o->group_size) < 0 ? -1 : 0;
    case CLI_KV_OPT_START:
        return cli_parse_int("--kv-quantized-start", arg, 0, 1 << 30, &o->quantized_start) < 0 ? -1
                                                                                               : 0;
    default:
        return 1;
    }
}

/* MODEL as DESIGN.md §2 allows: a path (folder or file), or a deployment name whose config's
 * model_path is used. The result is malloc'd. */
char *cli_model_path(const char *arg) {
    if (path_exists(arg)) return xstrdup(arg);
    if (!deploy_name_valid(arg)) {
        kiln_error("%s: no such model folder or file", arg);
        return NULL;
    }
    deploy_root root;
    if (deploy_root_open(NULL, false, &root) != 0) return NULL;
    char *cfg_path = xasprintf("%s/%s/config.json", root.dir, arg);
    char *path = NULL;
    if (!path_exists(cfg_path)) {
        kiln_error("%s: no such model folder, file or deployment (looked in %s)", arg, root.shown);
    } else {
        deploy_diag diag = {0};
        deploy_config *cfg = deploy_config_load(&root, arg, &diag);
        if (cfg)
            path = xstrdup(cfg->model_dir);
        else
            kiln_error("%s: %s", cfg_path, diag.n_errors ? diag.errors[0] : "invalid config");
        deploy_config_free(cfg);
        diag_free(&diag);
    }
    free(cfg_path);
    deploy_root_free(&root);
    return path;
}
