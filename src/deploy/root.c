/*
 * root.c — the deployments folder (--root, $KILN_DEPLOY_DIR or ./deploy), the names of the
 * deployments in it, and the diagnostics list that validation fills.
 */
#include "deploy/deploy.h"
#include "deploy/internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *absolute_path(const char *path) {
    if (path[0] == '/') return xstrdup(path);
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) return xstrdup(path);
    return path_join(cwd, path);
}

/* Drops "/./", trailing "/" and "/." so that messages and units show tidy paths. */
void path_tidy(char *p) {
    char *r = p, *w = p;
    while (*r) {
        if (r[0] == '/' && r[1] == '.' && (r[2] == '/' || r[2] == 0) && w != p) {
            r += 2;
            continue;
        }
        if (r[0] == '/' && r[1] == '/') {
            r++;
            continue;
        }
        *w++ = *r++;
    }
    *w = 0;
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') p[--n] = 0;
}

int deploy_root_open(const char *dir, bool must_exist, deploy_root *out) {
    memset(out, 0, sizeof *out);
    if (!dir || !*dir) dir = getenv("KILN_DEPLOY_DIR");
    if (!dir || !*dir) dir = "deploy";
    if (must_exist && !is_directory(dir)) {
        kiln_error("deployments folder %s: %s (give --root DIR or set KILN_DEPLOY_DIR)", dir,
                   path_exists(dir) ? "not a folder" : "no such folder");
        return -1;
    }
    out->shown = xstrdup(dir);
    path_tidy(out->shown);
    char *abs = absolute_path(dir);
    path_tidy(abs);
    char *real = realpath(abs, NULL);
    out->dir = real ? xstrdup(real) : abs;
    if (real) {
        free(real);
        free(abs);
    }
    out->base = path_dirname(out->dir);
    return 0;
}

void deploy_root_free(deploy_root *root) {
    free(root->dir);
    free(root->shown);
    free(root->base);
    memset(root, 0, sizeof *root);
}

bool deploy_name_valid(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > 64 || name[0] == '.' || name[0] == '-') return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool fine = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
        if (!fine) return false;
    }
    return true;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **deploy_root_names(const deploy_root *root, int *n_out) {
    *n_out = 0;
    DIR *d = opendir(root->dir);
    if (!d) return NULL;
    char **names = NULL;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *sub = path_join(root->dir, e->d_name);
        char *cfg = path_join(sub, "config.json");
        if (is_directory(sub) && path_exists(cfg)) {
            names = xrealloc(names, (size_t)(n + 1) * sizeof *names);
            names[n++] = xstrdup(e->d_name);
        }
        free(sub);
        free(cfg);
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof *names, compare_names);
    *n_out = n;
    return names;
}

void deploy_names_free(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

static void diag_add(char ***list, int *n, const char *fmt, va_list ap) {
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) s = xstrdup("(out of memory)");
    *list = xrealloc(*list, (size_t)(*n + 1) * sizeof **list);
    (*list)[(*n)++] = s;
}

void diag_error(deploy_diag *d, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    diag_add(&d->errors, &d->n_errors, fmt, ap);
    va_end(ap);
}

void diag_warn(deploy_diag *d, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    diag_add(&d->warnings, &d->n_warnings, fmt, ap);
    va_end(ap);
}

void diag_print(const deploy_diag *d, FILE *f) {
    for (int i = 0; i < d->n_warnings; i++) fprintf(f, "kiln: warning: %s\n", d->warnings[i]);
    for (int i = 0; i < d->n_errors; i++) fprintf(f, "kiln: %s\n", d->errors[i]);
}

void diag_free(deploy_diag *d) {
    for (int i = 0; i < d->n_errors; i++) free(d->errors[i]);
    for (int i = 0; i < d->n_warnings; i++) free(d->warnings[i]);
    free(d->errors);
    free(d->warnings);
    memset(d, 0, sizeof *d);
}
