/*
 * supervisor.c — the built-in backend, for machines without systemd or launchd: `start`
 * detaches a runner in supervise mode (setsid and a double fork, so it outlives the shell and
 * never owns a terminal) and waits until it holds the pidfile lock and has spawned the
 * server; `stop` sends it SIGTERM, waits for the lock to be released, and kills what is left
 * after the timeout.
 */
#include "deploy/deploy.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOTIFY_FD 3 /* where the detached runner finds the pipe back to us */

/* In the grandchild: stdio to /dev/null, the notify pipe as fd 3, then exec the runner. */
static void exec_runner(const deploy_root *root, const deploy_config *cfg, int notify_w) {
    char *exe = deploy_self_exe();
    int devnull = open("/dev/null", O_RDWR);
    if (notify_w != NOTIFY_FD) {
        dup2(notify_w, NOTIFY_FD);
        close(notify_w);
    }
    fcntl(NOTIFY_FD, F_SETFD, 0);
    if (devnull >= 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        if (devnull > 2 && devnull != NOTIFY_FD) close(devnull);
    }
    if (chdir("/") != 0) { /* never keep a mount busy */
    }
    execl(exe, exe, "deploy", "run", cfg->name, "--root", root->dir, "--supervise", "--notify-fd",
          "3", (char *)NULL);
    dprintf(NOTIFY_FD, "error: cannot run %s: %s\n", exe, strerror(errno));
    _exit(127);
}

/* Reads the runner's one line ("ok RUNNER SERVER" or "error: …") within the deadline. */
static int read_notice(int fd, char *line, size_t size, double timeout) {
    size_t n = 0;
    double deadline = now_seconds() + timeout;
    while (n + 1 < size) {
        int left = (int)((deadline - now_seconds()) * 1000);
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, left) != 1) break;
        ssize_t k = read(fd, line + n, size - n - 1);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        n += (size_t)k;
        if (memchr(line, '\n', n)) break;
    }
    line[n] = 0;
    line[strcspn(line, "\n")] = 0;
    return n > 0 ? 0 : -1;
}

int supervisor_start(const deploy_root *root, const deploy_config *cfg) {
    int fds[2];
    if (pipe(fds) != 0) {
        kiln_error("pipe: %s", strerror(errno));
        return -1;
    }
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fflush(NULL);
    pid_t child = fork();
    if (child < 0) {
        kiln_error("fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (child == 0) {
        close(fds[0]);
        setsid();
        pid_t grandchild = fork();
        if (grandchild != 0) _exit(grandchild < 0 ? 1 : 0);
        exec_runner(root, cfg, fds[1]);
    }
    close(fds[1]);
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    char line[1200];
    int rc = read_notice(fds[0], line, sizeof line, 15.0);
    close(fds[0]);
    if (rc != 0) {
        kiln_error("the supervisor for \"%s\" did not report back (see %s/logs/server.log)",
                   cfg->name, cfg->dir);
        return -1;
    }
    if (!strncmp(line, "error: ", 7)) {
        kiln_error("%s", line + 7);
        return -1;
    }
    return 0;
}

int supervisor_stop(const deploy_config *cfg, double timeout) {
    deploy_state st;
    deploy_state_read(cfg, &st);
    if (!st.runner_pid) return 1;
    if (kill(st.runner_pid, SIGTERM) != 0 && errno != ESRCH) {
        kiln_error("cannot signal the supervisor of \"%s\" (pid %ld): %s", cfg->name,
                   (long)st.runner_pid, strerror(errno));
        return -1;
    }
    if (deploy_wait_released(cfg, timeout)) return 0;
    /* it did not stop in time: kill the server, then the runner */
    deploy_state now;
    deploy_state_read(cfg, &now);
    if (now.server_pid) kill(now.server_pid, SIGKILL);
    if (now.runner_pid) kill(now.runner_pid, SIGKILL);
    if (!deploy_wait_released(cfg, 5.0)) {
        kiln_error("the supervisor of \"%s\" (pid %ld) is still running after SIGKILL", cfg->name,
                   (long)st.runner_pid);
        return -1;
    }
    char *pidfile = deploy_pidfile(cfg); /* the killed runner could not remove it */
    unlink(pidfile);
    free(pidfile);
    printf("%s did not stop within %.0f s: killed it\n", cfg->name, timeout);
    return 0;
}
