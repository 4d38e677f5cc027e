/*
 * deploy_report.c — what `kiln deploy list`, `status` and `watch` print: one state word per
 * deployment built from the service manager, the runner's state file and the server's own
 * /health, plus memory (VmRSS), requests served (/metrics) and the last log lines on failure.
 */
#include "cli/deploy_report.h"
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

typedef struct snapshot {
    deploy_service_state svc;
    deploy_health health;
    char word[64];
    bool ready, failed, stopped;
} snapshot;

static void take_snapshot(const deploy_config *cfg, deploy_backend b, snapshot *s) {
    memset(s, 0, sizeof *s);
    deploy_service_query(cfg, b, &s->svc);
    const deploy_state *run = &s->svc.run;
    if (!run->runner_pid) {
        bool failed = !strncmp(s->svc.detail, "failed", 6);
        if (s->svc.running) {
            snprintf(s->word, sizeof s->word, "starting");
        } else {
            snprintf(s->word, sizeof s->word, "%s", failed ? "failed" : "stopped");
            s->failed = failed;
            s->stopped = true;
        }
        return;
    }
    if (!strcmp(run->phase, "backoff")) {
        snprintf(s->word, sizeof s->word, "restarting");
        s->failed = true;
        return;
    }
    if (!strcmp(run->phase, "stopping")) {
        snprintf(s->word, sizeof s->word, "stopping");
        return;
    }
    deploy_probe_health(cfg, &s->health);
    const deploy_health *h = &s->health;
    if (!h->reachable) {
        snprintf(s->word, sizeof s->word, "starting");
    } else if (!strcmp(h->status, "ok") || !strcmp(h->status, "ready")) {
        snprintf(s->word, sizeof s->word, "ready");
        s->ready = true;
    } else if (!strcmp(h->status, "loading")) {
        if (h->progress >= 0)
            snprintf(s->word, sizeof s->word, "loading %.0f%%", h->progress * 100);
        else
            snprintf(s->word, sizeof s->word, "loading");
    } else if (h->status[0]) {
        s->failed = !strcmp(h->status, "error") || !strcmp(h->status, "failed");
        snprintf(s->word, sizeof s->word, "%s", s->failed ? "failed" : h->status);
    } else {
        snprintf(s->word, sizeof s->word, "http %d", h->http_status);
    }
}

static double wall_now(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

static void format_duration(double seconds, char *out, size_t size) {
    long s = seconds < 0 ? 0 : (long)seconds;
    if (s < 60)
        snprintf(out, size, "%lds", s);
    else if (s < 3600)
        snprintf(out, size, "%ldm%02lds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(out, size, "%ldh%02ldm", s / 3600, s % 3600 / 60);
    else
        snprintf(out, size, "%ldd%02ldh", s / 86400, s % 86400 / 3600);
}

static char *uptime_text(const deploy_state *run) {
    if (!run->server_pid || run->started_at <= 0) return xstrdup("-");
    char buf[32];
    format_duration(wall_now() - run->started_at, buf, sizeof buf);
    return xstrdup(buf);
}

enum {
    COL_NAME,
    COL_DISPLAY,
    COL_MODEL,
    COL_ADDRESS,
    COL_BACKEND,
    COL_STATE,
    COL_PID,
    COL_UPTIME,
    N_COLS
};

static void print_row(char *const cells[N_COLS], const int width[N_COLS]) {
    for (int c = 0; c < N_COLS - 1; c++) printf("%-*s  ", width[c], cells[c]);
    printf("%s\n", cells[N_COLS - 1]);
}

int report_list(const deploy_root *root, const char *backend) {
    int n = 0;
    char **names = deploy_root_names(root, &n);
    if (n == 0) {
        printf("no deployments in %s (create one with kiln deploy new NAME --model PATH)\n",
               root->shown);
        deploy_names_free(names, n);
        return 0;
    }
    char *(*rows)[N_COLS] = xcalloc((size_t)n + 1, sizeof *rows);
    static const char *const heads[N_COLS] = {"NAME",    "DISPLAY NAME", "MODEL", "ADDRESS",
                                              "BACKEND", "STATE",        "PID",   "UPTIME"};
    for (int c = 0; c < N_COLS; c++) rows[0][c] = xstrdup(heads[c]);
    deploy_diag d = {0};
    int broken = 0;
    for (int i = 0; i < n; i++) {
        char **row = rows[i + 1];
        deploy_config *cfg = deploy_config_load(root, names[i], &d);
        row[COL_NAME] = xstrdup(names[i]);
        if (!cfg) {
            broken++;
            for (int c = 1; c < N_COLS; c++) row[c] = xstrdup(c == COL_STATE ? "invalid" : "-");
            continue;
        }
        deploy_backend b = deploy_backend_recorded(cfg);
        if (backend) deploy_backend_parse(backend, &b);
        snapshot s;
        take_snapshot(cfg, b == BACKEND_NONE ? BACKEND_SUPERVISOR : b, &s);
        row[COL_DISPLAY] = xstrdup(cfg->display_name);
        row[COL_MODEL] = xstrdup(cfg->model_path);
        row[COL_ADDRESS] = xasprintf("%s:%d", cfg->host, cfg->port);
        row[COL_BACKEND] = xstrdup(b == BACKEND_NONE ? "-" : deploy_backend_name(b));
        row[COL_STATE] = xstrdup(s.word);
        row[COL_PID] =
            s.svc.run.server_pid ? xasprintf("%ld", (long)s.svc.run.server_pid) : xstrdup("-");
        row[COL_UPTIME] = uptime_text(&s.svc.run);
        deploy_config_free(cfg);
    }
    int width[N_COLS] = {0};
    for (int i = 0; i <= n; i++)
        for (int c = 0; c < N_COLS; c++) {
            int w = (int)strlen(rows[i][c]);
            if (w > width[c]) width[c] = w;
        }
    for (int i = 0; i <= n; i++) print_row(rows[i], width);
    for (int i = 0; i <= n; i++)
        for (int c = 0; c < N_COLS; c++) free(rows[i][c]);
    free(rows);
    fflush(stdout);
    if (broken) diag_print(&d, stderr);
    diag_free(&d);
    deploy_names_free(names, n);
    return broken ? 1 : 0;
}

static void print_last_lines(const deploy_config *cfg, int n) {
    char *path = deploy_log_path(cfg);
    char *text = log_last_lines(path, n);
    printf("  last log lines (%s):\n", path);
    if (text) {
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
            printf("    %s\n", line);
    }
    free(text);
    free(path);
}

int report_status(const deploy_config *cfg, deploy_backend b) {
    snapshot s;
    take_snapshot(cfg, b, &s);
    const deploy_state *run = &s.svc.run;
    printf("%s — %s\n", cfg->name, cfg->display_name);
    printf("  config:    %s\n", cfg->shown_path);
    printf("  model:     %s\n", cfg->model_path);
    printf("  address:   http://%s:%d\n", cfg->host, cfg->port);
    printf("  backend:   %s (%s; %s)\n", deploy_backend_name(b),
           s.svc.installed ? "installed" : "not installed", s.svc.detail);
    printf("  state:     %s%s%s\n", s.word, s.health.error[0] ? ": " : "", s.health.error);
    if (run->runner_pid) {
        char *up = uptime_text(run);
        printf("  pid:       %ld (runner %ld), up %s, %d restart%s%s%s\n", (long)run->server_pid,
               (long)run->runner_pid, up, run->restarts, run->restarts == 1 ? "" : "s",
               run->last_exit[0] ? ", last exit: " : "", run->last_exit);
        free(up);
        long long rss = process_rss_bytes(run->server_pid);
        if (rss >= 0) printf("  memory:    %.1f MiB\n", (double)rss / (1 << 20));
        long long answered = -1, completions = -1;
        if (s.health.reachable) deploy_probe_requests(cfg, &answered, &completions);
        if (answered >= 0 && completions >= 0)
            printf("  requests:  %lld served (%lld completions)\n", answered, completions);
        else if (answered >= 0)
            printf("  requests:  %lld served\n", answered);
    } else if (run->stale_pidfile) {
        printf("  pidfile:   stale (its process is gone)\n");
    }
    char *log = deploy_log_path(cfg);
    printf("  logs:      %s\n", log);
    free(log);
    if (s.failed) print_last_lines(cfg, 15);
    return s.stopped || s.failed ? 3 : 0;
}

int report_watch(const deploy_config *cfg, deploy_backend b, double timeout) {
    double t0 = now_seconds();
    char last[64] = "";
    for (;;) {
        snapshot s;
        take_snapshot(cfg, b, &s);
        if (strcmp(s.word, last) != 0) {
            printf("%s: %s\n", cfg->name, s.word);
            fflush(stdout);
            snprintf(last, sizeof last, "%s", s.word);
        }
        if (s.ready) {
            printf("%s is ready on http://%s:%d (after %.1f s)\n", cfg->name, cfg->host, cfg->port,
                   now_seconds() - t0);
            return 0;
        }
        if (s.failed || s.stopped) {
            const char *why = s.health.error[0] ? s.health.error : s.svc.run.last_exit;
            printf("%s %s%s%s\n", cfg->name, s.stopped && !s.failed ? "is not running" : "failed",
                   why[0] ? ": " : "", why);
            print_last_lines(cfg, 15);
            return 1;
        }
        if (now_seconds() - t0 > timeout) {
            printf("%s: still \"%s\" after %.0f s; giving up\n", cfg->name, s.word, timeout);
            return 1;
        }
        usleep(200 * 1000);
    }
}
