/*
 * http.c — the HTTP side of `kiln serve` on libmicrohttpd, one thread per connection (a
 * streamed response blocks its own thread while it waits for tokens, nobody else's). Routes,
 * authentication, CORS, body limits, and the server's life: bind first, load the model in the
 * background (GET /health says "loading" meanwhile, or why it failed), serve, and on SIGTERM/SIGINT
 * stop accepting, let in-flight requests finish within the grace period, cancel the rest, exit.
 */
#include "server/internal.h"

#include <malloc.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A failed model load stays visible on /health ("error" and why) this long before the process
 * exits non-zero: a supervisor restarts it at once, and deployment tools polling /health
 * (`kiln deploy watch`, every 0.2 s) must not miss the reason in between. */
#define LOAD_FAILURE_VISIBLE_S 1.0

typedef struct conn_state {
    strbuf body;
    size_t received;
    bool too_large;
    double t_start;
} conn_state;

static const char *stage_names[] = {"model", "tokenizer", "chat template", "engine"};

bool client_gone(struct MHD_Connection *conn) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return true;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLHUP | POLLERR | POLLRDHUP)) return true;
    char c;
    return recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* ---- responses ---- */

static void add_cors(server *srv, struct MHD_Connection *conn, struct MHD_Response *resp) {
    const char *allowed = srv->cfg.cors_origin ? srv->cfg.cors_origin : "*";
    if (!*allowed) return;
    if (strcmp(allowed, "*")) { /* a list: echo the request's Origin when it is on it */
        const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
        if (!origin) return;
        size_t n = strlen(origin);
        const char *p = allowed;
        bool found = false;
        while (*p && !found) {
            const char *end = strchr(p, ',');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            found = len == n && !strncmp(p, origin, n);
            p = end ? end + 1 : p + len;
        }
        if (!found) return;
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
        MHD_add_response_header(resp, "Vary", "Origin");
        return;
    }
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
}

static enum MHD_Result send_reply(server *srv, struct MHD_Connection *conn, http_reply *r) {
    struct MHD_Response *resp;
    if (r->stream) {
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, job_stream_read,
                                                 r->stream, job_stream_release);
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    } else {
        if (r->status == 499) return MHD_NO; /* the client left: close without an answer */
        resp = MHD_create_response_from_buffer(r->len, r->body ? r->body : (char *)"",
                                               r->body ? MHD_RESPMEM_MUST_FREE
                                                       : MHD_RESPMEM_PERSISTENT);
        r->body = NULL;
        if (r->content_type) MHD_add_response_header(resp, "Content-Type", r->content_type);
    }
    if (r->allow) MHD_add_response_header(resp, "Allow", r->allow);
    if (r->status == 401) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    add_cors(srv, conn, resp);
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static void error_reply(http_reply *out, int status, const char *param, const char *code,
                        const char *msg) {
    api_error e;
    api_fail(&e, status, param, code, "%s", msg);
    reply_error(out, &e);
}

/* ---- routes ---- */

static void health(server *srv, http_reply *out) {
    int state = atomic_load(&srv->state);
    if (state == STATE_READY)
        reply_json(out, 200, json_pack("{s:s}", "status", "ok"));
    else if (state == STATE_LOADING) {
        int stage = atomic_load(&srv->load_stage);
        reply_json(out, 503,
                   json_pack("{s:s, s:f, s:s}", "status", "loading", "progress",
                             (double)stage / (double)ARRAY_LEN(stage_names), "stage",
                             stage_names[stage < 4 ? stage : 3]));
    } else if (state == STATE_STOPPING)
        reply_json(out, 503, json_pack("{s:s}", "status", "stopping"));
    else
        reply_json(out, 500, json_pack("{s:s, s:s}", "status", "error", "error", srv->load_error));
}

static json_t *model_object(server *srv) {
    return json_pack("{s:s, s:s, s:I, s:s, s:i}", "id", srv->model_id, "object", "model", "created",
                     (json_int_t)srv->started, "owned_by", "kiln", "context_length", srv->ctx);
}

static bool authorized(server *srv, struct MHD_Connection *conn) {
    if (!srv->cfg.api_key) return true;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) return false;
    const char *given = h + 7, *want = srv->cfg.api_key;
    size_t n = strlen(want);
    if (strlen(given) != n) return false;
    unsigned char diff = 0; /* constant time: no early exit on the first differing byte */
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)(given[i] ^ want[i]);
    return diff == 0;
}

typedef enum { R_NONE, R_HEALTH, R_METRICS, R_MODELS, R_MODEL, R_CHAT, R_COMPLETIONS } route_id;

static route_id find_route(const char *url, const char **model_id) {
    char path[512];
    snprintf(path, sizeof path, "%s", url);
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') path[--n] = 0;
    if (!strcmp(path, "/health")) return R_HEALTH;
    if (!strcmp(path, "/metrics")) return R_METRICS;
    if (!strcmp(path, "/v1/models") || !strcmp(path, "/models")) return R_MODELS;
    if (!strncmp(url, "/v1/models/", 11) && url[11]) {
        *model_id = url + 11;
        return R_MODEL;
    }
    if (!strcmp(path, "/v1/chat/completions") || !strcmp(path, "/chat/completions")) return R_CHAT;
    if (!strcmp(path, "/v1/completions") || !strcmp(path, "/completions")) return R_COMPLETIONS;
    return R_NONE;
}

static void dispatch(server *srv, struct MHD_Connection *conn, const char *url, const char *method,
                     conn_state *cs, http_reply *out, bool *counted) {
    const char *model_id = NULL;
    route_id r = find_route(url, &model_id);
    bool post = r == R_CHAT || r == R_COMPLETIONS;
    if (r == R_NONE) {
        char msg[600];
        snprintf(msg, sizeof msg, "no route for %s %.500s", method, url);
        error_reply(out, 404, NULL, "not_found", msg);
        return;
    }
    if (strcmp(method, post ? "POST" : "GET") && !(strcmp(method, "HEAD") == 0 && !post)) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s is not allowed on %.500s (use %s)", method, url,
                 post ? "POST" : "GET");
        error_reply(out, 405, NULL, "method_not_allowed", msg);
        out->allow = post ? "POST, OPTIONS" : "GET, HEAD, OPTIONS";
        return;
    }
    if (r == R_HEALTH) return health(srv, out);
    if (!authorized(srv, conn))
        return error_reply(out, 401, NULL, "invalid_api_key",
                           "a valid API key is required (Authorization: Bearer KEY)");
    if (r == R_METRICS) {
        strbuf m = {0};
        metrics_render(&m, atomic_load(&srv->state) == STATE_LOADING ? NULL : srv->sched);
        out->status = 200;
        out->body = m.data ? m.data : xstrdup("");
        out->len = m.len;
        out->content_type = "text/plain; version=0.0.4";
        return;
    }
    if (r == R_MODELS)
        return reply_json(out, 200,
                          json_pack("{s:s, s:[o]}", "object", "list", "data", model_object(srv)));
    if (r == R_MODEL) {
        if (strcmp(model_id, srv->model_id)) {
            char msg[600];
            snprintf(msg, sizeof msg, "the model \"%.500s\" does not exist", model_id);
            return error_reply(out, 404, "model", "model_not_found", msg);
        }
        return reply_json(out, 200, model_object(srv));
    }
    int state = atomic_load(&srv->state);
    if (state != STATE_READY)
        return error_reply(out, 503, NULL, state == STATE_LOADING ? "model_loading" : "unavailable",
                           state == STATE_LOADING ? "the model is still loading; retry shortly"
                                                  : "the server is shutting down");
    if (cs->too_large) {
        char msg[128];
        snprintf(msg, sizeof msg, "the request body is larger than %zu bytes",
                 srv->cfg.max_body_bytes);
        return error_reply(out, 413, NULL, "request_too_large", msg);
    }
    *counted = true; /* the job logs and counts itself */
    handle_generation(srv, conn, r == R_CHAT ? API_CHAT : API_COMPLETIONS,
                      cs->body.data ? cs->body.data : "", cs->body.len, out);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
    (void)version;
    server *srv = cls;
    conn_state *cs = *con_cls;
    http_reply out = {0};
    if (!cs) {
        cs = xcalloc(1, sizeof *cs);
        cs->t_start = now_seconds();
        *con_cls = cs;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > srv->cfg.max_body_bytes) {
            char msg[128];
            snprintf(msg, sizeof msg, "the request body is larger than %zu bytes",
                     srv->cfg.max_body_bytes);
            error_reply(&out, 413, NULL, "request_too_large", msg);
            metrics_request(413);
            return send_reply(srv, conn, &out);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        cs->received += *upload_size;
        if (cs->body.len + *upload_size > srv->cfg.max_body_bytes) {
            cs->too_large = true; /* keep reading (and dropping) so we can answer 413 */
            sb_free(&cs->body);
        } else if (!cs->too_large) {
            sb_append(&cs->body, upload, *upload_size);
        }
        *upload_size = 0;
        /* A body that trickles in for too long, or is far past the limit, ends the connection. */
        if (now_seconds() - cs->t_start > srv->cfg.timeout_s * 2.0 ||
            cs->received > 4 * srv->cfg.max_body_bytes + (1 << 20))
            return MHD_NO;
        return MHD_YES;
    }
    if (!strcmp(method, "OPTIONS")) {
        out.status = 204;
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(0, (char *)"", MHD_RESPMEM_PERSISTENT);
        add_cors(srv, conn, resp);
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                "Authorization, Content-Type, OpenAI-Organization, OpenAI-Project, "
                                "X-Stainless-Arch, X-Stainless-Lang, X-Stainless-OS, "
                                "X-Stainless-Package-Version, X-Stainless-Runtime, "
                                "X-Stainless-Runtime-Version, X-Stainless-Retry-Count, "
                                "X-Stainless-Timeout");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "86400");
        enum MHD_Result rc = MHD_queue_response(conn, 204, resp);
        MHD_destroy_response(resp);
        return rc;
    }
    bool counted = false;
    dispatch(srv, conn, url, method, cs, &out, &counted);
    if (!counted) metrics_request(out.status);
    return send_reply(srv, conn, &out);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)conn;
    (void)toe;
    conn_state *cs = *con_cls;
    if (!cs) return;
    sb_free(&cs->body);
    free(cs);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n') line[--n] = 0;
    log_debug("http: %s", line);
}

/* ---- life of the server ---- */

static void *load_main(void *arg) {
    server *srv = arg;
    const server_config *c = &srv->cfg;
    atomic_store(&srv->load_stage, 0);
    double t0 = now_seconds();
    srv->m = model_load(c->model_path);
    if (srv->m) {
        atomic_store(&srv->load_stage, 1);
        srv->tok = tokenizer_load(c->tokenizer_path ? c->tokenizer_path : c->model_path);
    }
    if (srv->tok) {
        atomic_store(&srv->load_stage, 2);
        if (is_directory(c->model_path) || c->chat_template_path) {
            srv->tmpl = chat_template_load(is_directory(c->model_path) ? c->model_path : ".",
                                           c->chat_template_path);
            if (!srv->tmpl && c->chat_template_path) goto fail;
            if (!srv->tmpl)
                log_warn("no chat template (%s): /v1/chat/completions will answer 400",
                         kiln_last_error());
        }
        atomic_store(&srv->load_stage, 3);
        srv->pool = pool_create(c->threads);
        scheduler_opts so = c->sched;
        srv->sched = scheduler_create(srv->m, srv->pool, &so);
    }
    if (srv->sched) {
        srv->ctx = scheduler_ctx(srv->sched);
        const kv_cache_opts *kv = &c->sched.kv;
        char kv_text[96] = "float";
        if (kv->bits)
            snprintf(kv_text, sizeof kv_text, "%d-bit, groups of %d, from position %d", kv->bits,
                     kv->group_size ? kv->group_size : KV_GROUP_SIZE_DEFAULT, kv->quantized_start);
        log_info("model %s ready in %.1fs: context %d, %d parallel sequences, %d threads, "
                 "KV cache %s",
                 srv->model_id, now_seconds() - t0, srv->ctx,
                 c->sched.max_seqs > 0 ? c->sched.max_seqs : 16, pool_size(srv->pool), kv_text);
        atomic_store(&srv->state, STATE_READY);
        return NULL;
    }
fail:
    snprintf(srv->load_error, sizeof srv->load_error, "%s", kiln_last_error());
    atomic_store(&srv->state, STATE_FAILED);
    return NULL;
}

static int bind_address(const char *host, int port, struct sockaddr_storage *addr, bool *v6) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    int rc = getaddrinfo(host, port_s, &hints, &res);
    if (rc != 0 || !res) {
        kiln_error("cannot resolve host \"%s\": %s", host, gai_strerror(rc));
        return -1;
    }
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *v6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    return 0;
}

static char *default_model_id(const char *path) {
    char *p = xstrdup(path);
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') p[--n] = 0;
    const char *base = strrchr(p, '/');
    char *id = xstrdup(base ? base + 1 : p);
    free(p);
    return id;
}

static void wait_active(server *srv, double seconds) {
    double end = now_seconds() + seconds;
    while (atomic_load(&srv->active) > 0 && now_seconds() < end) usleep(20000);
}

int server_run(const server_config *cfg) {
    server *srv = xcalloc(1, sizeof *srv);
    srv->cfg = *cfg;
    server_config *c = &srv->cfg;
    if (!c->host) c->host = "127.0.0.1";
    if (!c->max_body_bytes) c->max_body_bytes = 8u << 20;
    if (c->max_connections <= 0) c->max_connections = 64;
    if (c->timeout_s <= 0) c->timeout_s = 30;
    if (c->grace_s < 0) c->grace_s = 10;
    if (c->max_n <= 0) c->max_n = 16;
    if (c->keepalive_s <= 0) c->keepalive_s = 5;
    srv->model_id = c->model_id ? xstrdup(c->model_id) : default_model_id(c->model_path);
    srv->started = time(NULL);
    /* A thread per connection would otherwise spread small allocations over many malloc
     * arenas, and a long-running server's memory creeps up with their fragmentation. */
    mallopt(M_ARENA_MAX, 2);

    /* Signals are taken by sigtimedwait below; every thread started from here blocks them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_storage addr;
    bool v6 = false;
    if (bind_address(c->host, c->port, &addr, &v6) < 0) {
        free(srv->model_id);
        free(srv);
        return -1;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ERROR_LOG | MHD_USE_ITC | (v6 ? MHD_USE_IPv6 : 0);
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)c->port, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
        NULL, MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)c->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)c->timeout_s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_END);
    if (!d) {
        kiln_error("cannot listen on %s:%d (is the port in use?)", c->host, c->port);
        free(srv->model_id);
        free(srv);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    log_info("kiln %s listening on http://%s:%u (model %s loading)", KILN_VERSION, c->host,
             di ? di->port : (unsigned)c->port, srv->model_id);

    pthread_t loader;
    pthread_create(&loader, NULL, load_main, srv);
    int sig = 0, rc = 0;
    bool joined = false;
    double failed_at = -1;
    while (!sig && (failed_at < 0 || now_seconds() - failed_at < LOAD_FAILURE_VISIBLE_S)) {
        struct timespec ts = {0, 200 * 1000000L};
        int s = sigtimedwait(&set, NULL, &ts);
        if (s > 0) sig = s;
        if (!joined && atomic_load(&srv->state) != STATE_LOADING) {
            pthread_join(loader, NULL);
            joined = true;
            if (atomic_load(&srv->state) == STATE_FAILED) {
                kiln_error("%s", srv->load_error);
                rc = -1;
                failed_at = now_seconds();
            }
        }
    }
    if (sig) {
        log_info("%s: stopping (no new connections; %d requests in flight, grace %ds)",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT", atomic_load(&srv->active), c->grace_s);
        if (!joined) pthread_join(loader, NULL);
        atomic_store(&srv->state, srv->sched ? STATE_STOPPING : atomic_load(&srv->state));
        MHD_socket ls = MHD_quiesce_daemon(d);
        if (ls != MHD_INVALID_SOCKET) close(ls);
        if (srv->sched) {
            scheduler_stop_accepting(srv->sched);
            wait_active(srv, c->grace_s);
            if (atomic_load(&srv->active) > 0) {
                log_warn("grace period over: cancelling %d requests", atomic_load(&srv->active));
                scheduler_cancel_all(srv->sched);
                wait_active(srv, 5);
            }
        }
    }
    MHD_stop_daemon(d);
    scheduler_free(srv->sched);
    pool_destroy(srv->pool);
    chat_template_free(srv->tmpl);
    tokenizer_free(srv->tok);
    model_free(srv->m);
    free(srv->model_id);
    free(srv);
    if (rc == 0) log_info("stopped");
    return rc;
}
