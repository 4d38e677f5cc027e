/*
 * deploy.h — the face of the deployments layer: `deploy/NAME/config.json` files (parsing and
 * validation), the service backends that run them (systemd user units, launchd agents, kiln's
 * own supervisor), the runner that sits between a service manager and `kiln serve` (log
 * rotation, restarts, graceful stops) and the probes behind `kiln deploy status`.
 */
#ifndef KILN_DEPLOY_H
#define KILN_DEPLOY_H

#include "base/base.h"

#include <stdio.h>
#include <sys/types.h>

/* Defaults the server also uses when a config leaves them out. */
#define DEPLOY_DEFAULT_HOST "127.0.0.1"
#define DEPLOY_DEFAULT_PORT 8000

/* ---- the deployments folder ---- */
typedef struct deploy_root {
    char *dir;   /* absolute path of the deployments folder (…/deploy) */
    char *shown; /* the same as the user named it, for messages */
    char *base;  /* the folder holding it: relative model paths resolve here */
} deploy_root;

/* dir: --root, else $KILN_DEPLOY_DIR, else ./deploy. must_exist: fail if it is missing. */
int deploy_root_open(const char *dir, bool must_exist, deploy_root *out);
void deploy_root_free(deploy_root *root);
/* Sorted names of the subfolders that hold a config.json. */
char **deploy_root_names(const deploy_root *root, int *n_out);
void deploy_names_free(char **names, int n);
/* Letters, digits, '.', '_', '-'; at most 64; not starting with '.' or '-'. */
bool deploy_name_valid(const char *name);

/* ---- diagnostics: validation reports every problem, not just the first ---- */
typedef struct deploy_diag {
    char **errors, **warnings;
    int n_errors, n_warnings;
} deploy_diag;
void diag_error(deploy_diag *d, const char *fmt, ...) KILN_PRINTF(2, 3);
void diag_warn(deploy_diag *d, const char *fmt, ...) KILN_PRINTF(2, 3);
/* Prints warnings as "kiln: warning: …" and errors as "kiln: …", one a line. */
void diag_print(const deploy_diag *d, FILE *f);
void diag_free(deploy_diag *d);

/* ---- one deployment's config ---- */
typedef struct deploy_config {
    char *name;         /* the folder's name (service names derive from it) */
    char *dir;          /* absolute deploy/NAME */
    char *config_path;  /* absolute deploy/NAME/config.json */
    char *shown_path;   /* deploy/NAME/config.json as the user named the root */
    char *display_name; /* display_name, else name */
    char *model_path;   /* as written */
    char *model_dir;    /* resolved */
    char *host;
    int port;
    json_t *json; /* the whole document */
} deploy_config;

/* Parses and validates deploy/NAME/config.json; NULL when it has errors (all of them in diag). */
deploy_config *deploy_config_load(const deploy_root *root, const char *name, deploy_diag *diag);
void deploy_config_free(deploy_config *cfg);
/* Just enough of NAME to stop it, read its logs or uninstall it when its config has become
 * invalid (name, folders; host and port from the file where readable). NULL if no folder. */
deploy_config *deploy_config_bare(const deploy_root *root, const char *name);
/* Loads NAME and checks it shares no host:port with another deployment (broken ones are
 * skipped). Errors and warnings go to diag. */
deploy_config *deploy_config_load_checked(const deploy_root *root, const char *name,
                                          deploy_diag *diag);
/* Validates every deployment and the host:port pairs between them; returns the error count. */
int deploy_validate_all(const deploy_root *root, deploy_diag *diag);
/* Do two host:port pairs collide? (a wildcard host collides with every host) */
bool deploy_endpoints_collide(const char *host_a, int port_a, const char *host_b, int port_b);
/* The address a client on this machine uses to reach host (0.0.0.0 -> 127.0.0.1). */
const char *deploy_client_host(const char *host);

/* `kiln deploy new`: writes deploy/NAME/config.json (atomically) and install.sh/uninstall.sh.
 * port <= 0 picks the first port from 8000 that no other deployment uses. */
int deploy_new(const deploy_root *root, const char *name, const char *model, int port,
               const char *display_name, const char *host);

/* ---- run state (deploy/NAME/run/) ---- */
typedef struct deploy_state {
    pid_t runner_pid;   /* the runner / supervisor; 0 when none holds the lock */
    pid_t server_pid;   /* the current `kiln serve`; 0 when none */
    double started_at;  /* wall-clock start of the current server */
    int restarts;       /* since the runner started */
    char phase[32];     /* running, backoff, stopping, exited */
    char last_exit[96]; /* "exit status 1", "killed by signal 9", or "" */
    bool stale_pidfile; /* a pidfile was left by a runner that is gone */
} deploy_state;
char *deploy_run_dir(const deploy_config *cfg);  /* deploy/NAME/run */
char *deploy_log_path(const deploy_config *cfg); /* deploy/NAME/logs/server.log */
char *deploy_pidfile(const deploy_config *cfg);  /* deploy/NAME/run/kiln.pid */
/* Reads the pidfile (checking its lock) and state.json. */
void deploy_state_read(const deploy_config *cfg, deploy_state *st);
int deploy_state_write(const deploy_config *cfg, const deploy_state *st);
/* Waits until no runner holds the pidfile lock; true if that happened within timeout s. */
bool deploy_wait_released(const deploy_config *cfg, double timeout);
/* The absolute path of the running kiln binary (what services run). */
char *deploy_self_exe(void);

/* ---- the runner: `kiln deploy run NAME` (what every backend starts) ---- */
typedef struct deploy_run_options {
    bool supervise;      /* restart a crashed server with backoff (the built-in supervisor) */
    int notify_fd;       /* >= 0: write "ok\n" or an error line once the server is spawned */
    double stop_timeout; /* seconds between passing SIGTERM on and SIGKILL */
} deploy_run_options;
/* Holds the pidfile lock, runs the server with its output going to the rotated log, passes
 * SIGTERM/SIGINT on. Returns the exit status for the process. */
int deploy_run(const deploy_root *root, const deploy_config *cfg, const deploy_run_options *opt);

/* ---- service backends ---- */
typedef enum deploy_backend {
    BACKEND_NONE,
    BACKEND_SYSTEMD,
    BACKEND_LAUNCHD,
    BACKEND_SUPERVISOR
} deploy_backend;
const char *deploy_backend_name(deploy_backend b);
int deploy_backend_parse(const char *text, deploy_backend *out);
/* launchd on macOS, systemd where `systemctl --user` answers, else the supervisor. */
deploy_backend deploy_backend_detect(void);
/* The backend recorded when NAME was installed or started (BACKEND_NONE if never). */
deploy_backend deploy_backend_recorded(const deploy_config *cfg);
/* Records it in deploy/NAME/run/backend (BACKEND_NONE removes the record). */
int deploy_backend_record(const deploy_config *cfg, deploy_backend b);

typedef struct deploy_service_state {
    deploy_backend backend;
    bool installed;   /* unit / plist present (supervisor: marked installed) */
    bool running;     /* the service manager says it runs */
    char detail[128]; /* the service manager's own words (systemd: active/running) */
    deploy_state run; /* from the run folder */
} deploy_service_state;

int deploy_install(const deploy_root *root, const deploy_config *cfg, deploy_backend b, bool start);
/* Writes the unit / plist text that install would write to stdout, with its path. */
int deploy_print_service(const deploy_root *root, const deploy_config *cfg, deploy_backend b);
int deploy_uninstall(const deploy_config *cfg, deploy_backend b);
/* 0 started, 1 was already running (said so), -1 error. */
int deploy_start(const deploy_root *root, const deploy_config *cfg, deploy_backend b);
/* 0 stopped, 1 was not running, -1 error. Waits for the exit, kills after timeout seconds. */
int deploy_stop(const deploy_config *cfg, deploy_backend b, double timeout);
void deploy_service_query(const deploy_config *cfg, deploy_backend b, deploy_service_state *st);

/* systemd / launchd text and paths (exposed for tests and --dry-run). */
char *systemd_unit_path(const char *name);
char *systemd_unit_text(const deploy_root *root, const deploy_config *cfg, const char *exe);
bool systemd_available(void);
int systemd_install(const char *unit_path, const char *text, const char *name, bool start);
int systemd_uninstall(const char *unit_path, const char *name);
int systemd_start(const char *name);
int systemd_stop(const char *name);
void systemd_query(const char *name, deploy_service_state *st);

char *launchd_plist_path(const char *name);
char *launchd_label(const char *name);
char *launchd_plist_text(const deploy_root *root, const deploy_config *cfg, const char *exe);
int launchd_install(const char *plist_path, const char *text, bool start);
int launchd_uninstall(const char *plist_path);
int launchd_start(const char *plist_path);
int launchd_stop(const char *plist_path);
void launchd_query(const char *name, deploy_service_state *st);

/* The built-in supervisor: detaches a `kiln deploy run NAME --supervise`. */
int supervisor_start(const deploy_root *root, const deploy_config *cfg);
int supervisor_stop(const deploy_config *cfg, double timeout);

/* ---- probes ---- */
typedef struct deploy_health {
    bool reachable; /* something answered HTTP on host:port */
    int http_status;
    char status[32]; /* "ok", "loading", … as the server said; "" if unreadable */
    double progress; /* 0..1 while loading, -1 if not given */
    char error[256]; /* the server's own words when it failed to load */
} deploy_health;
/* GET http://host:port/path with a timeout; returns the HTTP status (body in *body) or -1. */
int http_get(const char *host, int port, const char *path, double timeout, char **body);
void deploy_probe_health(const deploy_config *cfg, deploy_health *h);
/* From the server's Prometheus /metrics: HTTP requests answered (kiln_requests_total, probes
 * included) and completions that produced tokens (the time-to-first-token histogram's count);
 * -1 where unknown. Returns 0, or -1 if /metrics did not answer. */
int deploy_probe_requests(const deploy_config *cfg, long long *answered, long long *completions);
/* Sums the samples of the counters in a Prometheus text whose names end in requests_total. */
long long prometheus_requests_total(const char *text);
/* Sums the samples of the metric named exactly name; -1 if there are none. */
long long prometheus_sum(const char *text, const char *name);
/* Resident memory of a process in bytes (VmRSS); -1 if unknown. */
long long process_rss_bytes(pid_t pid);
/* Does anything accept connections on host:port? */
bool port_in_use(const char *host, int port);

/* ---- logs ---- */
typedef struct log_writer log_writer;
/* max_bytes <= 0: $KILN_LOG_MAX_BYTES or 10 MiB; keep <= 0: $KILN_LOG_KEEP or 3 old files. */
log_writer *log_writer_open(const char *path, long long max_bytes, int keep);
/* Appends; rotates (path -> path.1 -> … path.KEEP) at line starts once the file is full. */
void log_writer_write(log_writer *w, const char *data, size_t n);
/* Appends one "TIMESTAMP kiln-deploy: message" line. */
void log_writer_note(log_writer *w, const char *fmt, ...) KILN_PRINTF(2, 3);
void log_writer_close(log_writer *w);
/* Prints the last n lines of a log to f. */
int log_tail(const char *path, int n, FILE *f);
/* Prints the last n lines, then new ones as they come (following rotations) until killed. */
int log_follow(const char *path, int n, FILE *f);
/* The last n lines as one string (for failure reports). */
char *log_last_lines(const char *path, int n);

#endif
