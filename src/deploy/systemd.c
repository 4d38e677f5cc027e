/*
 * systemd.c — the systemd backend: a user unit ~/.config/systemd/user/kiln-NAME.service
 * that runs `kiln deploy run NAME` (Restart=on-failure, output to the deployment's logs/),
 * and the `systemctl --user` calls that install, start, stop and query it.
 */
#include "deploy/deploy.h"
#include "deploy/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *systemd_unit_path(const char *name) {
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    if (xdg && *xdg) return xasprintf("%s/systemd/user/kiln-%s.service", xdg, name);
    return xasprintf("%s/.config/systemd/user/kiln-%s.service", home ? home : "", name);
}

/* A unit file value: '%' is a specifier and '$' a variable, so both are doubled; control
 * characters become spaces. quote: wrap in "" for an ExecStart argument. */
static char *unit_escape(const char *s, bool quote) {
    size_t n = strlen(s);
    char *out = xmalloc(n * 2 + 3), *w = out;
    if (quote) *w++ = '"';
    for (; *s; s++) {
        char c = *s;
        if ((unsigned char)c < 0x20) c = ' ';
        if (c == '%' || c == '$') *w++ = c;
        if (quote && (c == '"' || c == '\\')) *w++ = '\\';
        *w++ = c;
    }
    if (quote) *w++ = '"';
    *w = 0;
    return out;
}

char *systemd_unit_text(const deploy_root *root, const deploy_config *cfg, const char *exe) {
    char *q_exe = unit_escape(exe, true), *q_name = unit_escape(cfg->name, true),
         *q_root = unit_escape(root->dir, true), *desc = unit_escape(cfg->display_name, false),
         *base = unit_escape(root->base, false), *dir = unit_escape(cfg->dir, false);
    char *text =
        xasprintf("# Written by `kiln deploy install %s`; `kiln deploy uninstall %s` removes it.\n"
                  "[Unit]\n"
                  "Description=kiln: %s (deployment %s)\n"
                  "After=network.target\n"
                  "\n"
                  "[Service]\n"
                  "Type=simple\n"
                  "ExecStart=%s deploy run %s --root %s\n"
                  "WorkingDirectory=%s\n"
                  "Restart=on-failure\n"
                  "RestartSec=2\n"
                  "KillMode=mixed\n"
                  "TimeoutStopSec=30\n"
                  "StandardOutput=append:%s/logs/service.log\n"
                  "StandardError=append:%s/logs/service.log\n"
                  "\n"
                  "[Install]\n"
                  "WantedBy=default.target\n",
                  cfg->name, cfg->name, desc, cfg->name, q_exe, q_name, q_root, base, dir, dir);
    free(q_exe);
    free(q_name);
    free(q_root);
    free(desc);
    free(base);
    free(dir);
    return text;
}

bool systemd_available(void) {
    const char *argv[] = {"systemctl", "--user", "show-environment", NULL};
    return run_tool(argv, NULL) == 0;
}

static char *unit_name(const char *name) {
    return xasprintf("kiln-%s.service", name);
}

static int systemctl(const char *verb, const char *name) {
    char *unit = name ? unit_name(name) : NULL;
    const char *argv[] = {"systemctl", "--user", verb, unit, NULL};
    int rc = run_tool_checked(argv);
    free(unit);
    return rc;
}

int systemd_install(const char *unit_path, const char *text, const char *name, bool start) {
    char *dir = path_dirname(unit_path);
    int rc = mkdir_parents(dir);
    free(dir);
    if (rc == 0) rc = write_file_atomic(unit_path, text, strlen(text));
    if (rc == 0) rc = systemctl("daemon-reload", NULL);
    if (rc == 0) rc = systemctl("enable", name);
    if (rc == 0 && start) rc = systemctl("start", name);
    return rc;
}

int systemd_uninstall(const char *unit_path, const char *name) {
    if (path_exists(unit_path)) {
        systemctl("disable", name); /* a unit systemd never loaded cannot be disabled: fine */
        if (unlink(unit_path) != 0) {
            kiln_error("%s: %s", unit_path, strerror(errno));
            return -1;
        }
    }
    return systemctl("daemon-reload", NULL);
}

int systemd_start(const char *name) {
    return systemctl("start", name);
}

int systemd_stop(const char *name) {
    return systemctl("stop", name);
}

void systemd_query(const char *name, deploy_service_state *st) {
    char *unit = unit_name(name), *out = NULL;
    const char *argv[] = {"systemctl", "--user",   "show", unit,        "-p", "ActiveState",
                          "-p",        "SubState", "-p",   "LoadState", NULL};
    char *path = systemd_unit_path(name);
    st->installed = path_exists(path);
    free(path);
    if (run_tool(argv, &out) == 0 && out) {
        char active[64] = "", sub[64] = "";
        for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
            sscanf(line, "ActiveState=%63s", active);
            sscanf(line, "SubState=%63s", sub);
        }
        snprintf(st->detail, sizeof st->detail, "%s/%s", active, sub);
        st->running = !strcmp(active, "active") || !strcmp(active, "activating") ||
                      !strcmp(active, "reloading");
    } else {
        snprintf(st->detail, sizeof st->detail, "systemctl --user does not answer");
    }
    free(out);
    free(unit);
}
