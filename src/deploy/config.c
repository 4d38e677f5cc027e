/*
 * config.c — parsing and validating deploy/NAME/config.json (the toolkit's schema, DESIGN.md
 * §5) before anything starts. Every problem becomes one line naming the file, the field path,
 * what was expected and what was found; unknown fields are warned about, never dropped.
 */
#include "deploy/deploy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum field_kind { F_STRING, F_INT, F_NUMBER, F_BOOL, F_OBJECT, F_ANY };

/* One known field. A section of "" is the top level; lo/hi bound numbers (inclusive);
 * choices (0-terminated) list the only values an integer may take. */
typedef struct field_spec {
    const char *section, *key;
    enum field_kind kind;
    double lo, hi;
    const int *choices;
} field_spec;

static const int kv_bits_choices[] = {2, 3, 4, 5, 6, 8, 0};
static const int group_size_choices[] = {32, 64, 128, 0};

/* The same fields `kiln serve --config` reads (src/cli/serve.c), so a config that passes here
 * starts there without surprises. */
static const field_spec fields[] = {
    {"", "name", F_STRING},
    {"", "display_name", F_STRING},
    {"", "description", F_STRING},
    {"", "model_path", F_STRING},
    {"", "parameters", F_OBJECT},
    {"", "kv_cache", F_OBJECT},
    {"", "server", F_OBJECT},
    {"", "service", F_ANY},
    {"parameters", "temp", F_NUMBER, 0, 2},
    {"parameters", "temperature", F_NUMBER, 0, 2},
    {"parameters", "top_p", F_NUMBER, 0, 1},
    {"parameters", "top_k", F_INT, -1, 1 << 20},
    {"parameters", "min_p", F_NUMBER, 0, 1},
    {"parameters", "max_tokens", F_INT, 1, 2147483647},
    {"parameters", "repetition_penalty", F_NUMBER, 0.001, 100},
    {"parameters", "presence_penalty", F_NUMBER, -2, 2},
    {"parameters", "frequency_penalty", F_NUMBER, -2, 2},
    {"parameters", "seed", F_INT, 0, 2147483647},
    {"kv_cache", "bits", F_INT, 0, 0, kv_bits_choices},
    {"kv_cache", "group_size", F_INT, 0, 0, group_size_choices},
    {"kv_cache", "quantized_start", F_INT, 0, 2147483647},
    {"server", "host", F_STRING},
    {"server", "port", F_INT, 1, 65535},
    {"server", "model_id", F_STRING},
    {"server", "trust_remote_code", F_BOOL},
    {"server", "prompt_cache_size", F_INT, 0, 1 << 20},
    {"server", "prompt_cache_bytes", F_INT, 0, 9.2e18},
    {"server", "api_key", F_STRING},
    {"server", "parallel", F_INT, 1, 1024},
    {"server", "ctx", F_INT, 16, 1 << 24},
    {"server", "threads", F_INT, 1, 1024},
    {"server", "cors_origin", F_STRING},
    {"server", "chat_template", F_STRING},
};

/* What a JSON value is, for "found …": `string "8000"`, `number 1.5`, `an array`. */
static char *describe(const json_t *v) {
    if (!v) return xstrdup("nothing");
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return xstrdup("an object");
    case JSON_ARRAY:
        return xstrdup("an array");
    case JSON_STRING: {
        const char *s = json_string_value(v);
        return strlen(s) > 60 ? xasprintf("string \"%.57s...\"", s) : xasprintf("string \"%s\"", s);
    }
    case JSON_INTEGER:
        return xasprintf("%lld", (long long)json_integer_value(v));
    case JSON_REAL:
        return xasprintf("%.17g", json_real_value(v));
    case JSON_TRUE:
        return xstrdup("true");
    case JSON_FALSE:
        return xstrdup("false");
    case JSON_NULL:
        return xstrdup("null");
    }
    return xstrdup("something");
}

static char *expected_text(const field_spec *f) {
    switch (f->kind) {
    case F_STRING:
        return xstrdup("a string");
    case F_BOOL:
        return xstrdup("true or false");
    case F_OBJECT:
        return xstrdup("an object");
    case F_ANY:
        return xstrdup("anything");
    case F_NUMBER:
        return xasprintf("a number in %g..%g", f->lo, f->hi);
    case F_INT:
        if (f->choices) {
            char buf[128] = "one of";
            for (const int *c = f->choices; *c; c++)
                snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s %d",
                         c == f->choices ? "" : ",", *c);
            return xstrdup(buf);
        }
        return xasprintf("an integer in %.0f..%.0f", f->lo, f->hi);
    }
    return xstrdup("?");
}

static bool value_fits(const field_spec *f, const json_t *v) {
    switch (f->kind) {
    case F_STRING:
        return json_is_string(v);
    case F_BOOL:
        return json_is_boolean(v);
    case F_OBJECT:
        return json_is_object(v);
    case F_ANY:
        return true;
    case F_NUMBER:
        return json_is_number(v) && json_number_value(v) >= f->lo && json_number_value(v) <= f->hi;
    case F_INT: {
        if (!json_is_number(v)) return false;
        double x = json_number_value(v);
        if (x != floor(x)) return false;
        if (f->choices) {
            for (const int *c = f->choices; *c; c++)
                if (x == *c) return true;
            return false;
        }
        return x >= f->lo && x <= f->hi;
    }
    }
    return false;
}

static const field_spec *find_field(const char *section, const char *key) {
    for (size_t i = 0; i < ARRAY_LEN(fields); i++)
        if (!strcmp(fields[i].section, section) && !strcmp(fields[i].key, key)) return &fields[i];
    return NULL;
}

/* Checks every member of obj (the top level, or one section) against the table. */
static void check_members(const char *file, const char *section, json_t *obj, deploy_diag *d) {
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        char *where = *section ? xasprintf("%s.%s", section, key) : xstrdup(key);
        const field_spec *f = find_field(section, key);
        if (!f) {
            diag_warn(d, "%s: %s: unknown field, ignored", file, where);
        } else if (json_is_null(v) && f->kind != F_OBJECT) {
            /* null means "absent" (kv_cache.bits: null is "unquantized") */
        } else if (!value_fits(f, v)) {
            char *want = expected_text(f), *got = describe(v);
            diag_error(d, "%s: %s: expected %s, found %s", file, where, want, got);
            free(want);
            free(got);
        } else if (f->kind == F_OBJECT) {
            check_members(file, key, v, d);
        }
        free(where);
    }
}

static char *resolve_model_dir(const deploy_root *root, const char *path) {
    if (path[0] == '/') return xstrdup(path);
    const char *home = getenv("HOME");
    if (path[0] == '~' && path[1] == '/' && home) return path_join(home, path + 2);
    const char *rel = (path[0] == '.' && path[1] == '/') ? path + 2 : path;
    return path_join(root->base, rel);
}

static void check_model_path(const char *file, const deploy_root *root, json_t *doc,
                             deploy_config *cfg, deploy_diag *d) {
    json_t *v = json_object_get(doc, "model_path");
    if (!v || json_is_null(v)) {
        diag_error(d, "%s: model_path: expected a string (the model folder), found nothing", file);
        return;
    }
    if (!json_is_string(v)) return; /* reported by check_members */
    const char *path = json_string_value(v);
    if (!*path) {
        diag_error(d, "%s: model_path: expected a model folder, found an empty string", file);
        return;
    }
    char *dir = resolve_model_dir(root, path);
    char *model_cfg = path_join(dir, "config.json");
    if (!path_exists(dir))
        diag_error(d, "%s: model_path: expected a model folder, found \"%s\" (%s does not exist)",
                   file, path, dir);
    else if (!is_directory(dir))
        diag_error(d, "%s: model_path: expected a model folder, found \"%s\" (%s is not a folder)",
                   file, path, dir);
    else if (!path_exists(model_cfg))
        diag_error(d,
                   "%s: model_path: expected a model folder with config.json, found \"%s\" (%s "
                   "has no config.json)",
                   file, path, dir);
    free(model_cfg);
    cfg->model_path = xstrdup(path);
    cfg->model_dir = dir;
}

/* A host must be an IP literal or a host name: no spaces, slashes or ports. */
static bool host_valid(const char *h) {
    if (!*h || strlen(h) > 253) return false;
    for (const char *p = h; *p; p++) {
        char c = *p;
        bool fine = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == ':' || c == '_';
        if (!fine) return false;
    }
    /* "host:port" is a common slip; a real IPv6 literal has at least two colons */
    const char *colon = strchr(h, ':');
    return !colon || strchr(colon + 1, ':');
}

static const char *section_string(json_t *doc, const char *section, const char *key) {
    json_t *s = json_object_get(doc, section);
    json_t *v = json_is_object(s) ? json_object_get(s, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

deploy_config *deploy_config_load(const deploy_root *root, const char *name, deploy_diag *d) {
    char *dir = path_join(root->dir, name);
    char *shown_dir = path_join(root->shown, name);
    char *file = path_join(shown_dir, "config.json");
    free(shown_dir);
    deploy_config *cfg = xcalloc(1, sizeof *cfg);
    cfg->name = xstrdup(name);
    cfg->dir = dir;
    cfg->config_path = path_join(dir, "config.json");
    cfg->shown_path = file;
    int errors_before = d->n_errors;

    if (!deploy_name_valid(name))
        diag_error(d,
                   "%s: deployment name: expected letters, digits, '.', '_' or '-' (at most 64), "
                   "found \"%s\"",
                   file, name);
    if (!path_exists(cfg->config_path)) {
        diag_error(d, "%s: no such file (is \"%s\" a deployment in %s?)", file, name, root->shown);
        goto done;
    }
    json_error_t jerr;
    json_t *doc = json_load_file(cfg->config_path, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        if (jerr.line > 0)
            diag_error(d, "%s:%d:%d: expected valid JSON, found an error: %s", file, jerr.line,
                       jerr.column, jerr.text);
        else
            diag_error(d, "%s: expected valid JSON, found an error: %s", file, jerr.text);
        goto done;
    }
    cfg->json = doc;
    if (!json_is_object(doc)) {
        char *got = describe(doc);
        diag_error(d, "%s: (top level): expected an object, found %s", file, got);
        free(got);
        goto done;
    }
    check_members(file, "", doc, d);
    check_model_path(file, root, doc, cfg, d);

    const char *named = NULL;
    if (json_get_string(doc, "name", &named) == 0 && strcmp(named, name) != 0)
        diag_warn(d, "%s: name: \"%s\" differs from the folder's name; services use \"%s\"", file,
                  named, name);
    const char *display = NULL;
    json_get_string(doc, "display_name", &display);
    if (!display || !*display) display = named;
    cfg->display_name = xstrdup(display && *display ? display : name);

    const char *host = section_string(doc, "server", "host");
    if (host && !host_valid(host))
        diag_error(d, "%s: server.host: expected an IP address or host name, found \"%s\"", file,
                   host);
    cfg->host = xstrdup(host ? host : DEPLOY_DEFAULT_HOST);
    json_t *server = json_object_get(doc, "server");
    json_t *port = json_is_object(server) ? json_object_get(server, "port") : NULL;
    cfg->port = json_is_number(port) ? (int)json_number_value(port) : DEPLOY_DEFAULT_PORT;

done:
    if (d->n_errors > errors_before) {
        deploy_config_free(cfg);
        return NULL;
    }
    return cfg;
}

deploy_config *deploy_config_bare(const deploy_root *root, const char *name) {
    if (!deploy_name_valid(name)) return NULL;
    char *dir = path_join(root->dir, name);
    if (!is_directory(dir)) {
        free(dir);
        return NULL;
    }
    deploy_config *cfg = xcalloc(1, sizeof *cfg);
    cfg->name = xstrdup(name);
    cfg->dir = dir;
    cfg->config_path = path_join(dir, "config.json");
    char *shown_dir = path_join(root->shown, name);
    cfg->shown_path = path_join(shown_dir, "config.json");
    free(shown_dir);
    cfg->display_name = xstrdup(name);
    cfg->model_path = xstrdup("?");
    cfg->model_dir = xstrdup("?");
    json_t *doc = json_load_file(cfg->config_path, 0, NULL);
    const char *host = doc ? section_string(doc, "server", "host") : NULL;
    cfg->host = xstrdup(host && host_valid(host) ? host : DEPLOY_DEFAULT_HOST);
    json_t *server = doc ? json_object_get(doc, "server") : NULL;
    json_t *port = json_is_object(server) ? json_object_get(server, "port") : NULL;
    double p = json_is_number(port) ? json_number_value(port) : 0;
    cfg->port = p >= 1 && p <= 65535 ? (int)p : DEPLOY_DEFAULT_PORT;
    if (doc) json_decref(doc);
    return cfg;
}

void deploy_config_free(deploy_config *cfg) {
    if (!cfg) return;
    free(cfg->name);
    free(cfg->dir);
    free(cfg->config_path);
    free(cfg->shown_path);
    free(cfg->display_name);
    free(cfg->model_path);
    free(cfg->model_dir);
    free(cfg->host);
    if (cfg->json) json_decref(cfg->json);
    free(cfg);
}

static bool is_wildcard(const char *host) {
    return !strcmp(host, "0.0.0.0") || !strcmp(host, "::") || !strcmp(host, "[::]");
}

bool deploy_endpoints_collide(const char *host_a, int port_a, const char *host_b, int port_b) {
    if (port_a != port_b) return false;
    return is_wildcard(host_a) || is_wildcard(host_b) || !strcmp(host_a, host_b) ||
           !strcmp(deploy_client_host(host_a), deploy_client_host(host_b));
}

const char *deploy_client_host(const char *host) {
    if (!strcmp(host, "0.0.0.0") || !strcmp(host, "localhost")) return "127.0.0.1";
    if (!strcmp(host, "::") || !strcmp(host, "[::]")) return "::1";
    return host;
}

static void check_collision(const deploy_config *a, const deploy_config *b, deploy_diag *d) {
    if (deploy_endpoints_collide(a->host, a->port, b->host, b->port))
        diag_error(d,
                   "%s: server.port: expected a host:port no other deployment uses, found %s:%d, "
                   "which deployment \"%s\" (%s) uses as %s:%d",
                   a->shown_path, a->host, a->port, b->name, b->shown_path, b->host, b->port);
}

deploy_config *deploy_config_load_checked(const deploy_root *root, const char *name,
                                          deploy_diag *d) {
    deploy_config *cfg = deploy_config_load(root, name, d);
    if (!cfg) return NULL;
    int n = 0;
    char **names = deploy_root_names(root, &n);
    int errors_before = d->n_errors;
    for (int i = 0; i < n; i++) {
        if (!strcmp(names[i], name)) continue;
        deploy_diag quiet = {0};
        deploy_config *other = deploy_config_load(root, names[i], &quiet);
        diag_free(&quiet);
        if (other) check_collision(cfg, other, d);
        deploy_config_free(other);
    }
    deploy_names_free(names, n);
    if (d->n_errors > errors_before) {
        deploy_config_free(cfg);
        return NULL;
    }
    return cfg;
}

int deploy_validate_all(const deploy_root *root, deploy_diag *d) {
    int n = 0;
    char **names = deploy_root_names(root, &n);
    deploy_config **cfgs = xcalloc((size_t)n + 1, sizeof *cfgs);
    for (int i = 0; i < n; i++) cfgs[i] = deploy_config_load(root, names[i], d);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (cfgs[i] && cfgs[j]) check_collision(cfgs[i], cfgs[j], d);
    for (int i = 0; i < n; i++) deploy_config_free(cfgs[i]);
    free(cfgs);
    deploy_names_free(names, n);
    return d->n_errors;
}
