/*
 * log_rotate.c — the deployment's log file, written by the runner from the server's output
 * and rotated by size (server.log -> server.log.1 -> … -> server.log.KEEP, the oldest
 * dropped) so a long-running service never fills the disk. Rotation happens only at the
 * start of a line, so no line is split between two files.
 */
#include "deploy/deploy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_BYTES (10LL << 20)
#define DEFAULT_KEEP      3

struct log_writer {
    char *path;
    int fd;
    long long size, max_bytes;
    int keep;
    bool at_line_start;
};

static long long env_number(const char *name, long long fallback) {
    const char *v = getenv(name);
    char *end;
    long long x = v ? strtoll(v, &end, 10) : 0;
    return (v && *v && !*end && x > 0) ? x : fallback;
}

static int open_log(log_writer *w) {
    w->fd = open(w->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        kiln_error("%s: %s", w->path, strerror(errno));
        return -1;
    }
    struct stat st;
    w->size = fstat(w->fd, &st) == 0 ? (long long)st.st_size : 0;
    return 0;
}

log_writer *log_writer_open(const char *path, long long max_bytes, int keep) {
    char *dir = path_dirname(path);
    mkdir(dir, 0755);
    free(dir);
    log_writer *w = xcalloc(1, sizeof *w);
    w->path = xstrdup(path);
    w->max_bytes = max_bytes > 0 ? max_bytes : env_number("KILN_LOG_MAX_BYTES", DEFAULT_MAX_BYTES);
    w->keep = keep > 0 ? keep : (int)env_number("KILN_LOG_KEEP", DEFAULT_KEEP);
    w->at_line_start = true;
    if (open_log(w) != 0) {
        free(w->path);
        free(w);
        return NULL;
    }
    return w;
}

static void rotate(log_writer *w) {
    close(w->fd);
    for (int i = w->keep - 1; i >= 1; i--) {
        char *from = xasprintf("%s.%d", w->path, i), *to = xasprintf("%s.%d", w->path, i + 1);
        rename(from, to); /* missing older files are fine */
        free(from);
        free(to);
    }
    char *first = xasprintf("%s.1", w->path);
    rename(w->path, first);
    free(first);
    if (open_log(w) != 0) w->fd = -1;
}

static void write_all(log_writer *w, const char *p, size_t n) {
    while (n > 0 && w->fd >= 0) {
        ssize_t k = write(w->fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return; /* a full disk must not stop the server: drop the text */
        p += k;
        n -= (size_t)k;
        w->size += k;
    }
}

void log_writer_write(log_writer *w, const char *data, size_t n) {
    while (n > 0) {
        if (w->at_line_start && w->size >= w->max_bytes) rotate(w);
        if (w->fd < 0 && open_log(w) != 0) return;
        const char *nl = memchr(data, '\n', n);
        size_t len = nl ? (size_t)(nl - data) + 1 : n;
        write_all(w, data, len);
        w->at_line_start = nl != NULL;
        data += len;
        n -= len;
    }
}

void log_writer_note(log_writer *w, const char *fmt, ...) {
    char stamp[32], msg[1024];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *line = xasprintf("%s%s kiln-deploy: %s\n", w->at_line_start ? "" : "\n", stamp, msg);
    log_writer_write(w, line, strlen(line));
    free(line);
}

void log_writer_close(log_writer *w) {
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    free(w->path);
    free(w);
}
