/*
 * log_read.c — reading a deployment's log: its last lines (`kiln deploy logs NAME [LINES]`,
 * failure reports) and following it as it grows (`--follow`), across rotations.
 */
#include "deploy/deploy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads backwards from the end in blocks until n line ends are found (or the file starts). */
char *log_last_lines(const char *path, int n) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return NULL;
    }
    off_t end = st.st_size, start = end;
    const off_t block = 64 * 1024;
    char *buf = NULL;
    size_t have = 0;
    int lines = 0;
    while (start > 0 && lines <= n) {
        off_t from = start > block ? start - block : 0;
        size_t len = (size_t)(start - from);
        char *nb = xmalloc(len + have + 1);
        if (pread(fd, nb, len, from) != (ssize_t)len) {
            free(nb);
            break;
        }
        if (have) memcpy(nb + len, buf, have);
        free(buf);
        buf = nb;
        have += len;
        start = from;
        lines = 0;
        for (size_t i = 0; i + 1 < have; i++) lines += buf[i] == '\n';
    }
    close(fd);
    if (!buf) return xstrdup("");
    buf[have] = 0;
    /* skip to just after the (lines - n)th newline, ignoring a final one */
    size_t body_end = have && buf[have - 1] == '\n' ? have - 1 : have;
    int count = 0;
    size_t i = body_end;
    while (i > 0) {
        if (buf[i - 1] == '\n' && ++count == n) break;
        i--;
    }
    char *out = xstrdup(n <= 0 ? "" : buf + i);
    free(buf);
    return out;
}

int log_tail(const char *path, int n, FILE *f) {
    if (!path_exists(path)) {
        kiln_error("%s: no log yet (the deployment has not run)", path);
        return -1;
    }
    char *text = log_last_lines(path, n);
    if (!text) {
        kiln_error("%s: %s", path, strerror(errno));
        return -1;
    }
    /* a fresh rotation leaves few lines: the rest come from the file before */
    int have = 0;
    for (const char *p = text; *p; p++) have += *p == '\n';
    char *older_path = xasprintf("%s.1", path);
    char *older = have < n ? log_last_lines(older_path, n - have) : NULL;
    if (older) fputs(older, f);
    free(older);
    free(older_path);
    fputs(text, f);
    fflush(f);
    free(text);
    return 0;
}

/* Copies what follows offset `*pos` of the file behind fd to f. */
static void copy_new(int fd, off_t *pos, FILE *f) {
    char buf[16384];
    ssize_t k;
    while ((k = pread(fd, buf, sizeof buf, *pos)) > 0) {
        fwrite(buf, 1, (size_t)k, f);
        *pos += k;
    }
    fflush(f);
}

int log_follow(const char *path, int n, FILE *f) {
    if (log_tail(path, n, f) != 0) return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        kiln_error("%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    fstat(fd, &st);
    off_t pos = st.st_size;
    ino_t inode = st.st_ino;
    for (;;) {
        copy_new(fd, &pos, f);
        if (ferror(f)) break; /* the reader went away (a closed pipe) */
        usleep(200 * 1000);
        struct stat now;
        if (stat(path, &now) == 0 && (now.st_ino != inode || now.st_size < pos)) {
            /* rotated: finish the old file, then start the new one from its beginning */
            copy_new(fd, &pos, f);
            int nfd = open(path, O_RDONLY | O_CLOEXEC);
            if (nfd >= 0) {
                close(fd);
                fd = nfd;
                pos = 0;
                inode = now.st_ino;
            }
        }
    }
    close(fd);
    return 0;
}
