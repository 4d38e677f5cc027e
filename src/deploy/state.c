/*
 * state.c — what a deployment's run/ folder says: the pidfile the runner holds locked for
 * its whole life (a pidfile nobody locks is stale), state.json (the current server's pid,
 * start time, restarts, last exit) and the backend it was installed or started with.
 */
#include "deploy/deploy.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __APPLE__
#include <mach-o/dyld.h>
#endif

char *deploy_run_dir(const deploy_config *cfg) {
    return path_join(cfg->dir, "run");
}

char *deploy_log_path(const deploy_config *cfg) {
    return xasprintf("%s/logs/server.log", cfg->dir);
}

char *deploy_pidfile(const deploy_config *cfg) {
    return xasprintf("%s/run/kiln.pid", cfg->dir);
}

static char *state_path(const deploy_config *cfg) {
    return xasprintf("%s/run/state.json", cfg->dir);
}

/* The pid in the pidfile if a live process holds its lock; 0 otherwise (*stale if the file
 * was there without a holder). */
static pid_t locked_pid(const char *pidfile, bool *stale) {
    *stale = false;
    int fd = open(pidfile, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char buf[32] = {0};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    pid_t pid = n > 0 ? (pid_t)atol(buf) : 0;
    bool held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    if (held) return pid > 0 ? pid : 0;
    *stale = true;
    return 0;
}

void deploy_state_read(const deploy_config *cfg, deploy_state *st) {
    memset(st, 0, sizeof *st);
    char *pidfile = deploy_pidfile(cfg);
    st->runner_pid = locked_pid(pidfile, &st->stale_pidfile);
    free(pidfile);
    if (!st->runner_pid) return; /* state.json of a dead runner says nothing true */
    char *path = state_path(cfg);
    json_t *doc = json_load_file(path, 0, NULL);
    free(path);
    if (!doc) return;
    long long v;
    double x;
    const char *s;
    if (json_get_int(doc, "server_pid", &v) == 0) st->server_pid = (pid_t)v;
    if (json_get_double(doc, "started_at", &x) == 0) st->started_at = x;
    if (json_get_int(doc, "restarts", &v) == 0) st->restarts = (int)v;
    if (json_get_string(doc, "phase", &s) == 0) snprintf(st->phase, sizeof st->phase, "%s", s);
    if (json_get_string(doc, "last_exit", &s) == 0)
        snprintf(st->last_exit, sizeof st->last_exit, "%s", s);
    json_decref(doc);
    /* a server that died between the runner's updates */
    if (st->server_pid > 0 && kill(st->server_pid, 0) != 0 && errno == ESRCH) st->server_pid = 0;
}

int deploy_state_write(const deploy_config *cfg, const deploy_state *st) {
    json_t *doc =
        json_pack("{s:I, s:I, s:f, s:i, s:s, s:s}", "runner_pid", (json_int_t)st->runner_pid,
                  "server_pid", (json_int_t)st->server_pid, "started_at", st->started_at,
                  "restarts", st->restarts, "phase", st->phase, "last_exit", st->last_exit);
    char *text = json_dumps(doc, JSON_INDENT(2));
    json_decref(doc);
    char *path = state_path(cfg);
    int rc = write_file_atomic(path, text, strlen(text));
    free(path);
    free(text);
    return rc;
}

char *deploy_self_exe(void) {
    char buf[PATH_MAX];
#ifdef __APPLE__
    uint32_t size = sizeof buf;
    if (_NSGetExecutablePath(buf, &size) == 0) {
        char *real = realpath(buf, NULL);
        if (real) return real;
    }
#else
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0) {
        buf[n] = 0;
        return xstrdup(buf);
    }
#endif
    return xstrdup("kiln");
}

static char *backend_file(const deploy_config *cfg) {
    return xasprintf("%s/run/backend", cfg->dir);
}

deploy_backend deploy_backend_recorded(const deploy_config *cfg) {
    char *path = backend_file(cfg), *text = NULL;
    deploy_backend b = BACKEND_NONE;
    if (path_exists(path) && read_file(path, &text, NULL) == 0) {
        text[strcspn(text, "\r\n")] = 0;
        if (deploy_backend_parse(text, &b) != 0) b = BACKEND_NONE;
    }
    free(text);
    free(path);
    return b;
}

/* Remembers the backend (deploy/NAME/run/backend) so later commands talk to the right one. */
int deploy_backend_record(const deploy_config *cfg, deploy_backend b) {
    char *run = deploy_run_dir(cfg);
    mkdir(run, 0755);
    free(run);
    char *path = backend_file(cfg);
    int rc;
    if (b == BACKEND_NONE) {
        rc = (unlink(path) == 0 || errno == ENOENT) ? 0 : -1;
    } else {
        char *text = xasprintf("%s\n", deploy_backend_name(b));
        rc = write_file_atomic(path, text, strlen(text));
        free(text);
    }
    free(path);
    return rc;
}

/* Waits until no runner holds the pidfile lock; true if it happened before the deadline. */
bool deploy_wait_released(const deploy_config *cfg, double timeout) {
    double deadline = now_seconds() + timeout;
    for (;;) {
        deploy_state st;
        deploy_state_read(cfg, &st);
        if (!st.runner_pid) return true;
        if (now_seconds() >= deadline) return false;
        usleep(50 * 1000);
    }
}
