/*
 * command.c — running the service managers' own tools (systemctl, launchctl) without a
 * shell: argv as given, output captured or discarded, the exit status returned.
 */
#include "deploy/deploy.h"
#include "deploy/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int run_tool(const char *const argv[], char **out) {
    int fds[2] = {-1, -1};
    if (out) *out = NULL;
    if (out && pipe(fds) != 0) {
        kiln_error("pipe: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        kiln_error("fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(out ? fds[1] : devnull, 1);
        dup2(devnull, 2);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (out) {
        close(fds[1]);
        size_t cap = 4096, n = 0;
        char *buf = xmalloc(cap);
        ssize_t k;
        while ((k = read(fds[0], buf + n, cap - n - 1)) > 0 || (k < 0 && errno == EINTR)) {
            if (k > 0) n += (size_t)k;
            if (n + 1 >= cap) buf = xrealloc(buf, cap *= 2);
        }
        buf[n] = 0;
        close(fds[0]);
        *out = buf;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int run_tool_checked(const char *const argv[]) {
    int rc = run_tool(argv, NULL);
    if (rc == 0) return 0;
    char cmd[512] = "";
    for (int i = 0; argv[i]; i++)
        snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), "%s%s", i ? " " : "", argv[i]);
    kiln_error("`%s` failed (%s %d)", cmd, rc == 127 ? "not found or status" : "status", rc);
    return -1;
}

int mkdir_parents(const char *dir) {
    char *p = xstrdup(dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        mkdir(p, 0755);
        *s = '/';
    }
    int rc = mkdir(p, 0755) == 0 || errno == EEXIST ? 0 : -1;
    if (rc) kiln_error("cannot create %s: %s", p, strerror(errno));
    free(p);
    return rc;
}
