/*
 * deploy.c — `kiln deploy VERB [NAME] …`: model deployments (deploy/NAME/config.json) as OS
 * services. This file parses the command line, validates configs before anything starts and
 * hands each verb to the deploy layer; list/status/watch reports live in deploy_report.c.
 */
#include "cli/cli.h"
#include "cli/deploy_report.h"
#include "deploy/deploy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "kiln deploy VERB [NAME] [OPTIONS]\n"
    "\n"
    "  list                         every deployment: name, model, address, backend, state\n"
    "  check [NAME]                 validate configs (all of them without NAME)\n"
    "  new NAME --model PATH [--port P] [--host H] [--display-name TEXT]\n"
    "  install NAME [--start] [--dry-run]   install as a service (--dry-run: print the unit)\n"
    "  uninstall NAME               stop and remove the service (config and logs stay)\n"
    "  start NAME | stop NAME [--timeout S] | restart NAME\n"
    "  status NAME                  service state, health, memory, requests served\n"
    "  logs NAME [LINES] [--follow] the deployment's log (last 50 lines by default)\n"
    "  watch NAME [--timeout S]     follow start-up until ready or failed\n"
    "  install-all | uninstall-all | start-all | stop-all\n"
    "  run NAME [--supervise]       run in the foreground (what the services run)\n"
    "\n"
    "options: --root DIR (default $KILN_DEPLOY_DIR or ./deploy), "
    "--backend systemd|launchd|supervisor";

typedef struct deploy_args {
    const char *verb, *name, *extra; /* extra: logs' LINES */
    const char *root, *backend, *model, *display_name, *host;
    int port, notify_fd;
    double timeout;
    bool start, follow, dry_run, supervise;
} deploy_args;

static int parse_args(int argc, char **argv, deploy_args *a) {
    memset(a, 0, sizeof *a);
    a->notify_fd = -1;
    a->timeout = -1;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char **str = NULL;
        if (!strcmp(arg, "--root"))
            str = &a->root;
        else if (!strcmp(arg, "--backend"))
            str = &a->backend;
        else if (!strcmp(arg, "--model"))
            str = &a->model;
        else if (!strcmp(arg, "--display-name"))
            str = &a->display_name;
        else if (!strcmp(arg, "--host"))
            str = &a->host;
        if (str || !strcmp(arg, "--port") || !strcmp(arg, "--timeout") ||
            !strcmp(arg, "--notify-fd")) {
            if (i + 1 >= argc) {
                kiln_error("%s needs a value", arg);
                return -1;
            }
            const char *value = argv[++i];
            if (str) {
                *str = value;
            } else if (!strcmp(arg, "--port")) {
                if (cli_parse_int(arg, value, 1, 65535, &a->port) != 0) return -1;
            } else if (!strcmp(arg, "--notify-fd")) {
                if (cli_parse_int(arg, value, 0, 1 << 20, &a->notify_fd) != 0) return -1;
            } else {
                float t;
                if (cli_parse_float(arg, value, 0, 86400, &t) != 0) return -1;
                a->timeout = t;
            }
        } else if (!strcmp(arg, "--start")) {
            a->start = true;
        } else if (!strcmp(arg, "--follow") || !strcmp(arg, "-f")) {
            a->follow = true;
        } else if (!strcmp(arg, "--dry-run")) {
            a->dry_run = true;
        } else if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            a->verb = "help";
        } else if (!strcmp(arg, "--supervise")) {
            a->supervise = true;
        } else if (arg[0] == '-' && arg[1]) {
            kiln_error("unknown option %s (see kiln deploy --help)", arg);
            return -1;
        } else if (!a->verb) {
            a->verb = arg;
        } else if (!a->name) {
            a->name = arg;
        } else if (!a->extra) {
            a->extra = arg;
        } else {
            kiln_error("unexpected argument \"%s\"", arg);
            return -1;
        }
    }
    return 0;
}

/* --backend, else $KILN_DEPLOY_BACKEND, else what NAME was installed with, else detection. */
static int pick_backend(const deploy_args *a, const deploy_config *cfg, deploy_backend *out) {
    const char *choice = a->backend ? a->backend : getenv("KILN_DEPLOY_BACKEND");
    if (choice && *choice) return deploy_backend_parse(choice, out);
    *out = cfg ? deploy_backend_recorded(cfg) : BACKEND_NONE;
    if (*out == BACKEND_NONE) *out = deploy_backend_detect();
    return 0;
}

/* Loads NAME, validated against every other deployment; prints warnings and errors. */
static deploy_config *load(const deploy_root *root, const char *name) {
    deploy_diag d = {0};
    deploy_config *cfg = deploy_config_load_checked(root, name, &d);
    diag_print(&d, stderr);
    diag_free(&d);
    return cfg;
}

static int verb_check(const deploy_root *root, const char *name) {
    deploy_diag d = {0};
    int n = 0;
    if (name) {
        deploy_config *cfg = deploy_config_load_checked(root, name, &d);
        deploy_config_free(cfg);
        n = 1;
    } else {
        char **names = deploy_root_names(root, &n);
        deploy_names_free(names, n);
        deploy_validate_all(root, &d);
    }
    diag_print(&d, stderr);
    int errors = d.n_errors;
    diag_free(&d);
    if (errors) return 1;
    printf("%d deployment%s in %s: valid\n", n, n == 1 ? "" : "s", root->shown);
    return 0;
}

/* One verb on one loaded deployment. Returns the exit status. */
static int run_verb(const deploy_args *a, const deploy_root *root, deploy_config *cfg) {
    deploy_backend b;
    if (pick_backend(a, cfg, &b) != 0) return cli_fail();
    const char *v = a->verb;
    double timeout = a->timeout >= 0 ? a->timeout : 30.0;
    int rc = 0;
    if (!strcmp(v, "install") || !strcmp(v, "install-all")) {
        if (a->dry_run) return deploy_print_service(root, cfg, b);
        rc = deploy_install(root, cfg, b, a->start);
    } else if (!strcmp(v, "uninstall") || !strcmp(v, "uninstall-all")) {
        rc = deploy_uninstall(cfg, b);
    } else if (!strcmp(v, "start") || !strcmp(v, "start-all")) {
        rc = deploy_start(root, cfg, b);
    } else if (!strcmp(v, "stop") || !strcmp(v, "stop-all")) {
        rc = deploy_stop(cfg, b, timeout);
    } else if (!strcmp(v, "restart")) {
        rc = deploy_stop(cfg, b, timeout);
        if (rc >= 0) rc = deploy_start(root, cfg, b);
    } else if (!strcmp(v, "status")) {
        return report_status(cfg, b);
    } else if (!strcmp(v, "watch")) {
        return report_watch(cfg, b, a->timeout >= 0 ? a->timeout : 600.0);
    } else if (!strcmp(v, "logs")) {
        int lines = 50;
        if (a->extra && cli_parse_int("LINES", a->extra, 0, 10000000, &lines) != 0)
            return cli_fail();
        char *path = deploy_log_path(cfg);
        rc = a->follow ? log_follow(path, lines, stdout) : log_tail(path, lines, stdout);
        free(path);
    } else if (!strcmp(v, "run")) {
        deploy_run_options opt = {.supervise = a->supervise,
                                  .notify_fd = a->notify_fd,
                                  .stop_timeout = a->timeout >= 0 ? a->timeout : 20.0};
        return deploy_run(root, cfg, &opt);
    }
    return rc < 0 ? cli_fail() : 0;
}

static int for_all(const deploy_args *a, const deploy_root *root) {
    /* nothing is installed or started while any config is broken; stopping goes on regardless */
    bool starts = !strcmp(a->verb, "install-all") || !strcmp(a->verb, "start-all");
    deploy_diag d = {0};
    int errors = deploy_validate_all(root, &d);
    diag_print(&d, stderr);
    diag_free(&d);
    if (errors && starts) return 1;
    int n = 0, failures = 0;
    char **names = deploy_root_names(root, &n);
    if (n == 0) printf("no deployments in %s\n", root->shown);
    for (int i = 0; i < n; i++) {
        deploy_diag quiet = {0};
        deploy_config *cfg = deploy_config_load(root, names[i], &quiet);
        diag_free(&quiet);
        if (!cfg && !starts) cfg = deploy_config_bare(root, names[i]);
        if (!cfg || run_verb(a, root, cfg) != 0) failures++;
        deploy_config_free(cfg);
    }
    deploy_names_free(names, n);
    return failures || errors ? 1 : 0;
}

static bool verb_known(const char *v, bool *needs_name) {
    static const char *const named[] = {"install", "uninstall", "start", "stop", "restart",
                                        "status",  "logs",      "watch", "run"};
    static const char *const unnamed[] = {"list",      "check",    "install-all", "uninstall-all",
                                          "start-all", "stop-all", "new"};
    for (size_t i = 0; i < ARRAY_LEN(named); i++)
        if (!strcmp(v, named[i])) return (*needs_name = true);
    *needs_name = false;
    for (size_t i = 0; i < ARRAY_LEN(unnamed); i++)
        if (!strcmp(v, unnamed[i])) return true;
    return false;
}

int cmd_deploy(int argc, char **argv) {
    deploy_args a;
    if (parse_args(argc, argv, &a) != 0) return cli_fail();
    if (!a.verb || !strcmp(a.verb, "help") || !strcmp(a.verb, "--help")) {
        if (!a.verb) return cli_usage(usage_text);
        printf("usage: %s\n", usage_text);
        return 0;
    }
    bool needs_name;
    if (!verb_known(a.verb, &needs_name)) {
        kiln_error("unknown deploy verb \"%s\" (see kiln deploy --help)", a.verb);
        return cli_fail();
    }
    if ((needs_name || !strcmp(a.verb, "new")) && !a.name) return cli_usage(usage_text);
    if (a.backend) {
        deploy_backend b;
        if (deploy_backend_parse(a.backend, &b) != 0) return cli_fail();
    }
    deploy_root root;
    bool creating = !strcmp(a.verb, "new");
    if (deploy_root_open(a.root, !creating, &root) != 0) return cli_fail();
    int rc;
    if (creating) {
        if (!a.model) {
            kiln_error("new: --model PATH is required");
            rc = cli_fail();
        } else {
            rc = deploy_new(&root, a.name, a.model, a.port, a.display_name, a.host) == 0
                     ? 0
                     : cli_fail();
        }
    } else if (!strcmp(a.verb, "list")) {
        rc = report_list(&root, a.backend);
    } else if (!strcmp(a.verb, "check")) {
        rc = verb_check(&root, a.name);
    } else if (!needs_name) {
        rc = for_all(&a, &root);
    } else {
        deploy_config *cfg = load(&root, a.name);
        /* what runs must stay stoppable (and its logs readable) after its config broke */
        bool winding_down =
            !strcmp(a.verb, "stop") || !strcmp(a.verb, "uninstall") || !strcmp(a.verb, "logs");
        if (!cfg && winding_down && (cfg = deploy_config_bare(&root, a.name)))
            fprintf(stderr, "kiln: going on with %s %s despite its config's errors\n", a.verb,
                    a.name);
        rc = cfg ? run_verb(&a, &root, cfg) : 1;
        deploy_config_free(cfg);
    }
    deploy_root_free(&root);
    return rc;
}
