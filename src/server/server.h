/*
 * server.h — the face of the server layer: `kiln serve`'s OpenAI-compatible HTTP API over the
 * engine's scheduler. The CLI fills a server_config and calls server_run, which binds the port
 * first (so /health answers "loading" at once), loads the model, serves until SIGTERM or
 * SIGINT, then drains within the grace period and returns.
 */
#ifndef KILN_SERVER_H
#define KILN_SERVER_H

#include "engine/engine.h"

typedef struct server_config {
    const char *model_path;     /* model folder (or llama2.c .bin with tokenizer_path) */
    const char *tokenizer_path; /* NULL: the model folder */
    const char *model_id;       /* the name clients use; default: the folder's name */
    const char *host;           /* default 127.0.0.1 */
    int port;                   /* default 8000; 0 picks a free port (logged) */
    const char *api_key;        /* NULL: no authentication */
    const char *chat_template_path;
    const char *cors_origin; /* Access-Control-Allow-Origin; default "*" */
    int threads;             /* compute threads (0: one per core) */
    scheduler_opts sched;
    const json_t *defaults; /* per-request defaults (a deployment's "parameters"); may be NULL */
    size_t max_body_bytes;  /* default 8 MiB */
    int max_connections;    /* default 64 */
    int timeout_s;          /* idle connection timeout, default 30 */
    int grace_s;            /* shutdown grace period, default 10 */
    int max_n;              /* largest n per request, default 16 */
    int keepalive_s;        /* SSE comment interval while nothing is produced, default 5 */
} server_config;

/* Checks per-request defaults (a deployment's "parameters") as a request would: -1 + error
 * naming the field when one is out of range. */
int server_check_defaults(const json_t *defaults);

/* Serves until SIGTERM/SIGINT; 0 after a clean stop, -1 + error if it cannot start. */
int server_run(const server_config *c);

#endif
