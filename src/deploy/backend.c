/*
 * backend.c — one set of deployment operations (install, uninstall, start, stop, query) over
 * the three backends: it picks the backend, says what it did in one line, and keeps the
 * promises every backend shares: starting a running deployment says so and succeeds, a
 * stale pidfile is noticed and cleared, stop waits for the runner to let go of its lock.
 */
#include "deploy/deploy.h"
#include "deploy/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RUNNER_WAIT 45.0 /* seconds a service manager may take to start or stop a runner */

static const char *const backend_names[] = {"none", "systemd", "launchd", "supervisor"};

const char *deploy_backend_name(deploy_backend b) {
    return backend_names[b];
}

int deploy_backend_parse(const char *text, deploy_backend *out) {
    for (int b = BACKEND_SYSTEMD; b <= BACKEND_SUPERVISOR; b++)
        if (!strcmp(text, backend_names[b])) {
            *out = (deploy_backend)b;
            return 0;
        }
    kiln_error("--backend: expected systemd, launchd or supervisor, found \"%s\"", text);
    return -1;
}

deploy_backend deploy_backend_detect(void) {
#ifdef __APPLE__
    return BACKEND_LAUNCHD;
#else
    return systemd_available() ? BACKEND_SYSTEMD : BACKEND_SUPERVISOR;
#endif
}

static char *service_text(const deploy_root *root, const deploy_config *cfg, deploy_backend b,
                          char **path) {
    char *exe = deploy_self_exe();
    char *text = NULL;
    if (b == BACKEND_SYSTEMD) {
        *path = systemd_unit_path(cfg->name);
        text = systemd_unit_text(root, cfg, exe);
    } else {
        *path = launchd_plist_path(cfg->name);
        text = launchd_plist_text(root, cfg, exe);
    }
    free(exe);
    return text;
}

int deploy_print_service(const deploy_root *root, const deploy_config *cfg, deploy_backend b) {
    if (b == BACKEND_SUPERVISOR) {
        printf("# the supervisor backend installs no file; `kiln deploy start %s` runs:\n"
               "# kiln deploy run %s --root %s --supervise\n",
               cfg->name, cfg->name, root->dir);
        return 0;
    }
    char *path = NULL, *text = service_text(root, cfg, b, &path);
    printf("# %s\n%s", path, text);
    free(path);
    free(text);
    return 0;
}

static void make_folders(const deploy_config *cfg) {
    char *run = deploy_run_dir(cfg), *logs = path_join(cfg->dir, "logs");
    mkdir_parents(run);
    mkdir_parents(logs);
    free(run);
    free(logs);
}

int deploy_install(const deploy_root *root, const deploy_config *cfg, deploy_backend b,
                   bool start) {
    make_folders(cfg);
    if (b == BACKEND_SUPERVISOR) {
        if (deploy_backend_record(cfg, b) != 0) return -1;
        printf("installed %s (supervisor: no service manager; `kiln deploy start %s` runs it)\n",
               cfg->name, cfg->name);
        return start ? (deploy_start(root, cfg, b) < 0 ? -1 : 0) : 0;
    }
    char *path = NULL, *text = service_text(root, cfg, b, &path);
    int rc = b == BACKEND_SYSTEMD ? systemd_install(path, text, cfg->name, false)
                                  : launchd_install(path, text, false);
    if (rc == 0) rc = deploy_backend_record(cfg, b);
    if (rc == 0) printf("installed %s as %s (%s)\n", cfg->name, path, deploy_backend_name(b));
    free(path);
    free(text);
    if (rc == 0 && start) rc = deploy_start(root, cfg, b) < 0 ? -1 : 0;
    return rc;
}

int deploy_uninstall(const deploy_config *cfg, deploy_backend b) {
    if (deploy_stop(cfg, b, 30.0) < 0) return -1;
    int rc = 0;
    char *path = NULL;
    if (b == BACKEND_SYSTEMD) {
        path = systemd_unit_path(cfg->name);
        rc = systemd_uninstall(path, cfg->name);
    } else if (b == BACKEND_LAUNCHD) {
        path = launchd_plist_path(cfg->name);
        rc = launchd_uninstall(path);
    }
    if (rc == 0) rc = deploy_backend_record(cfg, BACKEND_NONE);
    if (rc == 0)
        printf("uninstalled %s%s%s (config and logs kept in %s)\n", cfg->name,
               path ? ": removed " : "", path ? path : "", cfg->dir);
    free(path);
    return rc;
}

/* Waits until a runner holds the lock and has spawned the server, or the deadline passes. */
static bool wait_runner(const deploy_config *cfg, double timeout, deploy_state *st) {
    double deadline = now_seconds() + timeout;
    for (;;) {
        deploy_state_read(cfg, st);
        if (st->runner_pid && st->server_pid) return true;
        if (now_seconds() >= deadline) return false;
        usleep(50 * 1000);
    }
}

static void clear_stale_pidfile(const deploy_config *cfg, const deploy_state *st) {
    if (!st->stale_pidfile) return;
    char *pidfile = deploy_pidfile(cfg);
    printf("%s: removed a stale pidfile (%s: its process is gone)\n", cfg->name, pidfile);
    unlink(pidfile);
    free(pidfile);
}

int deploy_start(const deploy_root *root, const deploy_config *cfg, deploy_backend b) {
    deploy_state st;
    deploy_state_read(cfg, &st);
    if (st.runner_pid) {
        printf("%s is already running (pid %ld, %s:%d)\n", cfg->name,
               (long)(st.server_pid ? st.server_pid : st.runner_pid), cfg->host, cfg->port);
        return 1;
    }
    clear_stale_pidfile(cfg, &st);
    if (port_in_use(cfg->host, cfg->port)) {
        kiln_error("cannot start %s: %s:%d is already in use by another program", cfg->name,
                   cfg->host, cfg->port);
        return -1;
    }
    make_folders(cfg);
    int rc;
    if (b == BACKEND_SUPERVISOR) {
        rc = supervisor_start(root, cfg);
    } else {
        char *path = NULL, *text = service_text(root, cfg, b, &path);
        /* a deployment started before it was installed gets its unit written first */
        bool fresh = !path_exists(path) || deploy_backend_recorded(cfg) != b;
        rc = 0;
        if (fresh)
            rc = b == BACKEND_SYSTEMD ? systemd_install(path, text, cfg->name, false)
                                      : launchd_install(path, text, false);
        if (rc == 0) rc = b == BACKEND_SYSTEMD ? systemd_start(cfg->name) : launchd_start(path);
        free(path);
        free(text);
    }
    if (rc != 0) return -1;
    deploy_backend_record(cfg, b);
    if (!wait_runner(cfg, RUNNER_WAIT, &st)) {
        kiln_error("%s: the %s service did not start the server (see %s/logs/)", cfg->name,
                   deploy_backend_name(b), cfg->dir);
        return -1;
    }
    printf("started %s on %s:%d (pid %ld, %s); `kiln deploy watch %s` follows start-up\n",
           cfg->name, cfg->host, cfg->port, (long)st.server_pid, deploy_backend_name(b), cfg->name);
    return 0;
}

int deploy_stop(const deploy_config *cfg, deploy_backend b, double timeout) {
    deploy_state st;
    deploy_state_read(cfg, &st);
    int rc = 0;
    if (b == BACKEND_SUPERVISOR ||
        (st.runner_pid && deploy_backend_recorded(cfg) == BACKEND_SUPERVISOR)) {
        rc = supervisor_stop(cfg, timeout);
    } else if (b == BACKEND_SYSTEMD || b == BACKEND_LAUNCHD) {
        deploy_service_state svc = {0};
        deploy_service_query(cfg, b, &svc);
        if (!svc.running && !st.runner_pid) {
            rc = 1;
        } else {
            char *plist = launchd_plist_path(cfg->name);
            rc = b == BACKEND_SYSTEMD ? systemd_stop(cfg->name) : launchd_stop(plist);
            free(plist);
            if (rc == 0 && !deploy_wait_released(cfg, timeout)) {
                kiln_error("%s: the runner (pid %ld) is still running after %.0f s", cfg->name,
                           (long)st.runner_pid, timeout);
                rc = -1;
            }
        }
    } else {
        rc = st.runner_pid ? supervisor_stop(cfg, timeout) : 1;
    }
    if (rc == 1) {
        clear_stale_pidfile(cfg, &st);
        printf("%s is not running\n", cfg->name);
    } else if (rc == 0) {
        printf("stopped %s\n", cfg->name);
    }
    return rc;
}

void deploy_service_query(const deploy_config *cfg, deploy_backend b, deploy_service_state *st) {
    memset(st, 0, sizeof *st);
    st->backend = b;
    deploy_state_read(cfg, &st->run);
    if (b == BACKEND_SYSTEMD) {
        systemd_query(cfg->name, st);
    } else if (b == BACKEND_LAUNCHD) {
        launchd_query(cfg->name, st);
    } else {
        st->installed = deploy_backend_recorded(cfg) == BACKEND_SUPERVISOR;
        st->running = st->run.runner_pid != 0;
        snprintf(st->detail, sizeof st->detail, "%s",
                 st->running ? st->run.phase
                             : (st->run.stale_pidfile ? "dead (stale pidfile)" : "stopped"));
    }
}
