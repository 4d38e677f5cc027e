/*
 * probe.c — what `kiln deploy status` and `watch` learn from a running deployment: the
 * server's GET /health (ready, or loading with progress), the requests it has served (its
 * Prometheus GET /metrics) and the memory it holds (VmRSS). A small blocking HTTP/1.0
 * client with a deadline is all that needs.
 */
#include "deploy/deploy.h"
#include "deploy/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A connected socket to host:port, or -1; gives up at the deadline. */
static int connect_to(const char *host, int port, double deadline) {
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    host = deploy_client_host(host);
    if (getaddrinfo(host, service, &hints, &res) != 0) return -1;
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        fcntl(fd, F_SETFL, O_NONBLOCK);
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        struct pollfd p = {fd, POLLOUT, 0};
        int wait_ms = (int)((deadline - now_seconds()) * 1000);
        int err = 0;
        socklen_t len = sizeof err;
        if (errno != EINPROGRESS || wait_ms <= 0 || poll(&p, 1, wait_ms) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

bool port_in_use(const char *host, int port) {
    int fd = connect_to(host, port, now_seconds() + 1.0);
    if (fd < 0) return false;
    close(fd);
    return true;
}

static int io_wait(int fd, short events, double deadline) {
    int wait_ms = (int)((deadline - now_seconds()) * 1000);
    if (wait_ms <= 0) return -1;
    struct pollfd p = {fd, events, 0};
    return poll(&p, 1, wait_ms) == 1 ? 0 : -1;
}

int http_get(const char *host, int port, const char *path, double timeout, char **body) {
    *body = NULL;
    double deadline = now_seconds() + timeout;
    int fd = connect_to(host, port, deadline);
    if (fd < 0) return -1;
    const char *h = deploy_client_host(host);
    bool v6 = strchr(h, ':') != NULL;
    char *req = xasprintf("GET %s HTTP/1.0\r\nHost: %s%s%s:%d\r\nConnection: close\r\n\r\n", path,
                          v6 ? "[" : "", h, v6 ? "]" : "", port);
    size_t sent = 0, len = strlen(req);
    while (sent < len) {
        if (io_wait(fd, POLLOUT, deadline) != 0) break;
        ssize_t k = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
        if (k <= 0 && errno != EAGAIN && errno != EINTR) break;
        if (k > 0) sent += (size_t)k;
    }
    free(req);
    size_t cap = 8192, n = 0;
    char *buf = xmalloc(cap);
    while (sent == len && io_wait(fd, POLLIN, deadline) == 0) {
        if (n + 1 >= cap) buf = xrealloc(buf, cap *= 2);
        ssize_t k = recv(fd, buf + n, cap - n - 1, 0);
        if (k == 0) break;
        if (k < 0 && errno != EAGAIN && errno != EINTR) break;
        if (k > 0) n += (size_t)k;
        if (n > (16u << 20)) break;
    }
    close(fd);
    buf[n] = 0;
    int status = -1;
    char *head_end = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/%*d.%*d %d", &status) != 1 || !head_end) {
        free(buf);
        return -1;
    }
    *body = xstrdup(head_end + 4);
    free(buf);
    return status;
}

void deploy_probe_health(const deploy_config *cfg, deploy_health *h) {
    memset(h, 0, sizeof *h);
    h->progress = -1;
    char *body = NULL;
    h->http_status = http_get(cfg->host, cfg->port, "/health", 2.0, &body);
    h->reachable = h->http_status > 0;
    json_t *doc = body ? json_loads(body, 0, NULL) : NULL;
    free(body);
    if (!doc) return;
    const char *s;
    double p;
    if (json_get_string(doc, "status", &s) == 0) snprintf(h->status, sizeof h->status, "%s", s);
    if (json_get_string(doc, "error", &s) == 0) snprintf(h->error, sizeof h->error, "%s", s);
    /* progress as a fraction (0.42) or a percent (42) */
    if (json_get_double(doc, "progress", &p) == 0) h->progress = p > 1.0 ? p / 100.0 : p;
    json_decref(doc);
}

/* Past the "{…}" label set that starts at p (label values may hold quoted braces); NULL if
 * it does not close before end. */
static const char *skip_labels(const char *p, const char *end) {
    bool quoted = false;
    for (p++; p < end; p++) {
        if (quoted && *p == '\\' && p + 1 < end)
            p++;
        else if (*p == '"')
            quoted = !quoted;
        else if (*p == '}' && !quoted)
            return p + 1;
    }
    return NULL;
}

/* Sums the samples whose metric name satisfies match(name, len, arg). */
static long long sum_samples(const char *text, bool (*match)(const char *, size_t, const char *),
                             const char *arg) {
    long long total = -1;
    for (const char *line = text; line && *line;) {
        const char *next = strchr(line, '\n');
        size_t len = next ? (size_t)(next - line) : strlen(line);
        size_t name_len = strcspn(line, "{ \t\n");
        if (line[0] != '#' && name_len <= len && match(line, name_len, arg)) {
            const char *value = line + name_len;
            if (*value == '{') value = skip_labels(value, line + len);
            if (value) total = (total < 0 ? 0 : total) + (long long)strtod(value, NULL);
        }
        line = next ? next + 1 : NULL;
    }
    return total;
}

static bool ends_in(const char *name, size_t len, const char *suffix) {
    size_t n = strlen(suffix);
    return len >= n && !strncmp(name + len - n, suffix, n);
}

static bool named(const char *name, size_t len, const char *want) {
    return len == strlen(want) && !strncmp(name, want, len);
}

long long prometheus_requests_total(const char *text) {
    return sum_samples(text, ends_in, "requests_total");
}

long long prometheus_sum(const char *text, const char *name) {
    return sum_samples(text, named, name);
}

int deploy_probe_requests(const deploy_config *cfg, long long *answered, long long *completions) {
    char *body = NULL;
    int status = http_get(cfg->host, cfg->port, "/metrics", 2.0, &body);
    *answered = *completions = -1;
    if (status == 200 && body) {
        *answered = prometheus_requests_total(body);
        *completions = prometheus_sum(body, "kiln_time_to_first_token_seconds_count");
    }
    free(body);
    return status == 200 ? 0 : -1;
}

long long process_rss_bytes(pid_t pid) {
    if (pid <= 0) return -1;
#ifndef __linux__
    /* no /proc (macOS): ps reports the resident set in KiB */
    char arg[32], *out = NULL;
    snprintf(arg, sizeof arg, "%ld", (long)pid);
    const char *argv[] = {"ps", "-o", "rss=", "-p", arg, NULL};
    long long ps_kb = run_tool(argv, &out) == 0 && out ? atoll(out) : 0;
    free(out);
    return ps_kb > 0 ? ps_kb * 1024 : -1;
#endif
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[256];
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %lld kB", &kb) == 1) break;
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}
