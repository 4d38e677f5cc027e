/*
 * runner.c — `kiln deploy run NAME`: the process every backend starts. It holds the
 * deployment's pidfile lock, runs `kiln serve --config deploy/NAME/config.json` with its
 * output piped into the size-rotated log, passes SIGTERM/SIGINT/SIGHUP on for a graceful
 * stop (SIGKILL after a timeout), and records the server's pid and state in run/state.json.
 * With `supervise` (the built-in supervisor) it restarts a crashed server with backoff;
 * without it (systemd, launchd) it exits with the server's failure and lets them restart.
 */
#include "deploy/deploy.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define BACKOFF_FIRST 0.5  /* seconds before the first restart */
#define BACKOFF_MAX   30.0 /* the delay doubles up to this */
#define BACKOFF_RESET 30.0 /* a server that ran this long starts the backoff afresh */

static int signal_pipe[2] = {-1, -1};

static void on_signal(int sig) {
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    if (write(signal_pipe[1], &b, 1) < 0) { /* the pipe is full: a wakeup is pending anyway */
    }
    errno = saved;
}

static int pipe_cloexec(int fds[2]) {
    if (pipe(fds) != 0) return -1;
    for (int i = 0; i < 2; i++) fcntl(fds[i], F_SETFD, FD_CLOEXEC);
    return 0;
}

static double wall_seconds(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

static void notify(int fd, const char *fmt, ...) KILN_PRINTF(2, 3);
static void notify(int fd, const char *fmt, ...) {
    if (fd < 0) return;
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (write(fd, line, strlen(line)) < 0) { /* the starter gave up waiting; nothing to do */
    }
}

/* Takes the pidfile lock and writes our pid; fails if another runner holds it. */
static int take_pidfile(const deploy_config *cfg, int *fd_out) {
    char *path = deploy_pidfile(cfg);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        kiln_error("%s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char buf[32] = {0};
        if (read(fd, buf, sizeof buf - 1) < 0) buf[0] = 0;
        kiln_error("deployment \"%s\" is already running (pid %ld holds %s)", cfg->name, atol(buf),
                   path);
        close(fd);
        free(path);
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        kiln_error("%s: %s", path, strerror(errno));
        close(fd);
        free(path);
        return -1;
    }
    free(path);
    *fd_out = fd;
    return 0;
}

static pid_t spawn_server(const deploy_root *root, const deploy_config *cfg, int out_fd) {
    char *exe = getenv("KILN_SERVE_BIN") ? xstrdup(getenv("KILN_SERVE_BIN")) : deploy_self_exe();
    pid_t pid = fork();
    if (pid != 0) {
        free(exe);
        return pid;
    }
    /* the child: output to the log pipe, default signals, its directory the deployments' base */
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(out_fd, 1);
    dup2(out_fd, 2);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* a killed runner must not leave its server behind */
#endif
    if (chdir(root->base) != 0) { /* absolute paths follow, so this only tidies the cwd */
    }
    execl(exe, exe, "serve", "--config", cfg->config_path, (char *)NULL);
    dprintf(2, "kiln-deploy: cannot run %s: %s\n", exe, strerror(errno));
    _exit(127);
}

static void describe_exit(int status, char *out, size_t size) {
    if (WIFEXITED(status))
        snprintf(out, size, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, size, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(out, size, "status %d", status);
}

typedef struct runner {
    const deploy_root *root;
    const deploy_config *cfg;
    const deploy_run_options *opt;
    log_writer *log;
    int out[2];
    deploy_state st;
    bool stopping;
    double kill_at, restart_at, backoff, spawned_mono;
    int exit_code;
    bool done;
} runner;

static void save_state(runner *r, const char *phase) {
    snprintf(r->st.phase, sizeof r->st.phase, "%s", phase);
    deploy_state_write(r->cfg, &r->st);
}

static void start_server(runner *r) {
    pid_t pid = spawn_server(r->root, r->cfg, r->out[1]);
    if (pid < 0) {
        log_writer_note(r->log, "cannot start the server: %s", strerror(errno));
        r->restart_at = now_seconds() + r->backoff;
        save_state(r, "backoff");
        return;
    }
    r->st.server_pid = pid;
    r->st.started_at = wall_seconds();
    r->spawned_mono = now_seconds();
    r->restart_at = 0;
    log_writer_note(r->log, "started the server for \"%s\" on %s:%d (pid %ld)", r->cfg->name,
                    r->cfg->host, r->cfg->port, (long)pid);
    save_state(r, "running");
}

static void server_exited(runner *r, int status) {
    describe_exit(status, r->st.last_exit, sizeof r->st.last_exit);
    log_writer_note(r->log, "the server (pid %ld) ended: %s", (long)r->st.server_pid,
                    r->st.last_exit);
    r->st.server_pid = 0;
    bool failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (r->stopping || !failed || !r->opt->supervise) {
        r->exit_code = r->stopping || !failed ? 0 : 1;
        r->done = true;
        return;
    }
    if (now_seconds() - r->spawned_mono >= BACKOFF_RESET) r->backoff = BACKOFF_FIRST;
    r->st.restarts++;
    r->restart_at = now_seconds() + r->backoff;
    log_writer_note(r->log, "restarting in %.1f s (restart %d)", r->backoff, r->st.restarts);
    r->backoff = r->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : r->backoff * 2;
    save_state(r, "backoff");
}

static void begin_stop(runner *r, int sig) {
    if (r->stopping) return;
    r->stopping = true;
    if (!r->st.server_pid) {
        log_writer_note(r->log, "signal %d: stopping (no server running)", sig);
        r->done = true;
        return;
    }
    log_writer_note(r->log, "signal %d: stopping the server (pid %ld) gracefully", sig,
                    (long)r->st.server_pid);
    kill(r->st.server_pid, SIGTERM);
    r->kill_at = now_seconds() + r->opt->stop_timeout;
    save_state(r, "stopping");
}

static void drain_output(runner *r) {
    char buf[16384];
    ssize_t k;
    while ((k = read(r->out[0], buf, sizeof buf)) > 0) log_writer_write(r->log, buf, (size_t)k);
}

static void handle_signals(runner *r) {
    unsigned char sigs[64];
    ssize_t n = read(signal_pipe[0], sigs, sizeof sigs);
    for (ssize_t i = 0; i < n; i++) {
        if (sigs[i] == SIGCHLD) {
            int status;
            pid_t pid;
            while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
                if (pid == r->st.server_pid) {
                    drain_output(r);
                    server_exited(r, status);
                }
        } else {
            begin_stop(r, sigs[i]);
        }
    }
}

static int poll_timeout_ms(const runner *r) {
    double at = 0;
    if (r->stopping && r->st.server_pid) at = r->kill_at;
    if (!r->stopping && !r->st.server_pid && r->restart_at > 0) at = r->restart_at;
    if (at == 0) return -1;
    double left = at - now_seconds();
    return left <= 0 ? 0 : (int)(left * 1000) + 1;
}

static void install_handlers(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void run_loop(runner *r) {
    while (!r->done) {
        struct pollfd p[2] = {{r->out[0], POLLIN, 0}, {signal_pipe[0], POLLIN, 0}};
        int n = poll(p, 2, poll_timeout_ms(r));
        if (n < 0 && errno != EINTR) break;
        if (p[0].revents & POLLIN) drain_output(r);
        if (p[1].revents & POLLIN) handle_signals(r);
        if (r->done) break;
        double now = now_seconds();
        if (r->stopping && r->st.server_pid && now >= r->kill_at) {
            log_writer_note(r->log, "the server (pid %ld) did not stop in %.0f s: killing it",
                            (long)r->st.server_pid, r->opt->stop_timeout);
            kill(r->st.server_pid, SIGKILL);
            r->kill_at = now + 3600;
        }
        if (!r->stopping && !r->st.server_pid && r->restart_at > 0 && now >= r->restart_at)
            start_server(r);
    }
}

static void make_folders(const deploy_config *cfg) {
    char *run = deploy_run_dir(cfg);
    char *logs = path_join(cfg->dir, "logs");
    mkdir(run, 0755);
    mkdir(logs, 0755);
    free(run);
    free(logs);
}

int deploy_run(const deploy_root *root, const deploy_config *cfg, const deploy_run_options *opt) {
    if (opt->notify_fd >= 0) fcntl(opt->notify_fd, F_SETFD, FD_CLOEXEC); /* not the server's */
    make_folders(cfg);
    int lock_fd = -1;
    if (take_pidfile(cfg, &lock_fd) != 0) {
        notify(opt->notify_fd, "error: %s\n", kiln_last_error());
        return 1;
    }
    char *log_path = deploy_log_path(cfg);
    runner r = {.root = root, .cfg = cfg, .opt = opt, .backoff = BACKOFF_FIRST};
    r.log = log_writer_open(log_path, 0, 0);
    free(log_path);
    if (!r.log || pipe_cloexec(r.out) != 0 || pipe_cloexec(signal_pipe) != 0) {
        notify(opt->notify_fd, "error: %s\n", kiln_last_error());
        close(lock_fd);
        return 1;
    }
    fcntl(r.out[0], F_SETFL, O_NONBLOCK);
    fcntl(signal_pipe[0], F_SETFL, O_NONBLOCK);
    fcntl(signal_pipe[1], F_SETFL, O_NONBLOCK);
    install_handlers();
    r.st.runner_pid = getpid();
    log_writer_note(r.log, "%s \"%s\" (%s), runner pid %ld",
                    opt->supervise ? "supervising" : "running", cfg->name, cfg->display_name,
                    (long)getpid());
    start_server(&r);
    notify(opt->notify_fd, "ok %ld %ld\n", (long)getpid(), (long)r.st.server_pid);
    if (opt->notify_fd >= 0) close(opt->notify_fd);
    run_loop(&r);
    drain_output(&r);
    log_writer_note(r.log, "runner for \"%s\" exits (%d)", cfg->name, r.exit_code);
    save_state(&r, "exited");
    log_writer_close(r.log);
    char *pidfile = deploy_pidfile(cfg);
    unlink(pidfile); /* still ours: we hold the lock */
    free(pidfile);
    close(lock_fd);
    return r.exit_code;
}
