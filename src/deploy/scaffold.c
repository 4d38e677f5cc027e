/*
 * scaffold.c — `kiln deploy new NAME --model PATH`: a new deployment folder with a valid
 * config.json (written atomically, a free port chosen when none is given) and the
 * install.sh / uninstall.sh wrappers the toolkit's layout had.
 */
#include "deploy/deploy.h"
#include "deploy/internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The model folder as the config should name it: "./rel" under the base folder, else absolute. */
static char *model_reference(const deploy_root *root, const char *model) {
    char *real = realpath(model, NULL);
    if (!real) {
        kiln_error("--model: %s: no such folder", model);
        return NULL;
    }
    char *cfg = path_join(real, "config.json");
    bool fine = is_directory(real) && path_exists(cfg);
    free(cfg);
    if (!fine) {
        kiln_error("--model: expected a model folder with config.json, found %s", model);
        free(real);
        return NULL;
    }
    free(real);
    /* keep the user's spelling (a symlinked models folder stays a symlink) */
    char cwd[4096];
    char *abs =
        model[0] == '/' || !getcwd(cwd, sizeof cwd) ? xstrdup(model) : path_join(cwd, model);
    path_tidy(abs);
    size_t n = strlen(root->base);
    char *ref;
    if (!strncmp(abs, root->base, n) && abs[n] == '/')
        ref = xasprintf("./%s", abs + n + 1);
    else
        ref = xstrdup(abs);
    free(abs);
    return ref;
}

/* Loads every other deployment leniently, for port choice and collision checks. */
static deploy_config **load_others(const deploy_root *root, int *n_out) {
    int n = 0;
    char **names = deploy_root_names(root, &n);
    deploy_config **all = xcalloc((size_t)n + 1, sizeof *all);
    int k = 0;
    for (int i = 0; i < n; i++) {
        deploy_diag quiet = {0};
        deploy_config *c = deploy_config_load(root, names[i], &quiet);
        diag_free(&quiet);
        if (c) all[k++] = c;
    }
    deploy_names_free(names, n);
    *n_out = k;
    return all;
}

static const deploy_config *collision(deploy_config **others, int n, const char *host, int port) {
    for (int i = 0; i < n; i++)
        if (deploy_endpoints_collide(host, port, others[i]->host, others[i]->port))
            return others[i];
    return NULL;
}

static int write_script(const char *path, const char *text) {
    if (write_file_atomic(path, text, strlen(text)) != 0) return -1;
    chmod(path, 0755);
    return 0;
}

static int write_wrappers(const char *dir, const char *name) {
    char *exe = deploy_self_exe();
    static const char *const fmt =
        "#!/bin/sh\n"
        "# %s.sh — %s the deployment \"%s\" (written by `kiln deploy new`).\n"
        "here=$(cd \"$(dirname \"$0\")\" && pwd)\n"
        "KILN=${KILN:-$(command -v kiln || echo '%s')}\n"
        "exec \"$KILN\" deploy %s %s%s --root \"$(dirname \"$here\")\" \"$@\"\n";
    /* install.sh starts it too, as the toolkit's did */
    char *install_start =
        xasprintf(fmt, "install", "installs and starts", name, exe, "install", name, " --start");
    char *uninstall =
        xasprintf(fmt, "uninstall", "stops and uninstalls", name, exe, "uninstall", name, "");
    char *p_install = path_join(dir, "install.sh"), *p_uninstall = path_join(dir, "uninstall.sh");
    int rc = write_script(p_install, install_start);
    if (rc == 0) rc = write_script(p_uninstall, uninstall);
    free(exe);
    free(install_start);
    free(uninstall);
    free(p_install);
    free(p_uninstall);
    return rc;
}

int deploy_new(const deploy_root *root, const char *name, const char *model, int port,
               const char *display_name, const char *host) {
    if (!deploy_name_valid(name)) {
        kiln_error("deployment name: expected letters, digits, '.', '_' or '-' (at most 64, not "
                   "starting with '.' or '-'), found \"%s\"",
                   name);
        return -1;
    }
    char *dir = path_join(root->dir, name), *cfg_path = path_join(dir, "config.json");
    char *ref = NULL;
    int n_others = 0, rc = -1;
    deploy_config **others = load_others(root, &n_others);
    if (path_exists(cfg_path)) {
        kiln_error("%s/%s/config.json already exists (remove it or choose another name)",
                   root->shown, name);
        goto out;
    }
    if (!(ref = model_reference(root, model))) goto out;
    if (!host) host = DEPLOY_DEFAULT_HOST;
    if (port <= 0) {
        for (port = DEPLOY_DEFAULT_PORT; port < 65535 && collision(others, n_others, host, port);)
            port++;
    } else {
        const deploy_config *c = collision(others, n_others, host, port);
        if (c) {
            kiln_error("--port: %s:%d is already used by deployment \"%s\" (%s)", host, port,
                       c->name, c->shown_path);
            goto out;
        }
    }
    if (mkdir_parents(dir) != 0) goto out;
    json_t *doc = json_pack("{s:s, s:s, s:s, s:{s:s, s:i, s:s}}", "name", name, "display_name",
                            display_name ? display_name : name, "model_path", ref, "server", "host",
                            host, "port", port, "model_id", name);
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    char *with_newline = xasprintf("%s\n", text);
    free(text);
    rc = write_file_atomic(cfg_path, with_newline, strlen(with_newline));
    free(with_newline);
    if (rc == 0) rc = write_wrappers(dir, name);
    if (rc == 0)
        printf("created %s/%s/config.json (model %s, %s:%d)\n", root->shown, name, ref, host, port);
out:
    for (int i = 0; i < n_others; i++) deploy_config_free(others[i]);
    free(others);
    free(ref);
    free(dir);
    free(cfg_path);
    return rc;
}
