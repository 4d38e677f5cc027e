/*
 * internal.h — private to the server layer: the shared state, the request as parsed from
 * JSON, the per-choice text pipeline, metrics and small helpers.
 */
#ifndef KILN_SERVER_INTERNAL_H
#define KILN_SERVER_INTERNAL_H

#include "server/server.h"
#include "text/text.h"

#include <pthread.h>
#include <stdatomic.h>

/* ---- growable byte buffer ---- */
typedef struct strbuf {
    char *data;
    size_t len, cap;
} strbuf;
void sb_append(strbuf *b, const char *s, size_t n);
void sb_puts(strbuf *b, const char *s);
void sb_printf(strbuf *b, const char *fmt, ...) KILN_PRINTF(2, 3);
void sb_consume(strbuf *b, size_t n); /* drops the first n bytes */
void sb_free(strbuf *b);

/* ---- errors as OpenAI's error object ---- */
typedef struct api_error {
    int status;
    char message[512];
    const char *type, *param, *code;
    char param_buf[96];
} api_error;
/* Fills e; returns -1 so callers can `return api_fail(...)`. param may be NULL. */
int api_fail(api_error *e, int status, const char *param, const char *code, const char *fmt, ...)
    KILN_PRINTF(5, 6);
char *api_error_json(const api_error *e); /* malloc'd body */

/* ---- a parsed, validated request ---- */
enum api_kind { API_CHAT, API_COMPLETIONS };

typedef struct api_request {
    enum api_kind kind;
    json_t *body;           /* the whole request (owned) */
    const json_t *messages; /* chat */
    const json_t *tools;    /* chat, NULL when absent or tool_choice is "none" */
    const json_t *template_kwargs;
    char **prompts; /* completions: text prompts, or NULL entries where token ids are given */
    int32_t **prompt_ids;
    int *n_prompt_ids;
    int n_prompts;
    int max_tokens; /* 0: up to the context */
    bool max_tokens_given;
    sampler_params sampling;
    bool seed_given;
    int32_t *bias_ids;
    float *bias_values;
    int n_bias;
    char **stop;
    int n_stop;
    int n;
    bool stream, include_usage;
    bool logprobs;
    int top_logprobs;
} api_request;

/* Parses and validates a request body against the defaults; -1 fills e (400 naming param). */
int api_request_parse(api_request *r, enum api_kind kind, const char *body, size_t len,
                      const json_t *defaults, const char *model_id, int max_n, api_error *e);
void api_request_free(api_request *r);

/* ---- per-choice text pipeline: stop strings, <think>, tool calls ---- */
typedef struct text_out {
    char **stop;
    int n_stop;
    bool parse_tags; /* chat: <think> and tool calls (completions return raw text) */
    bool parse_tools;
    int mode;           /* content, reasoning, inside <tool_call> */
    bool content_begun; /* some content was emitted (Llama JSON calls must start the reply) */
    bool strip_ws;      /* drop whitespace before the next content (after </think>, a call) */
    bool stopped;       /* a stop string matched: nothing more is emitted */
    strbuf pending;     /* held by the stop filter: maybe the start of a stop string */
    strbuf held_tags;   /* held by the tag filter: maybe the start of a tag */
    strbuf held;        /* content held back: maybe a Llama 3.1 JSON tool call */
    strbuf content, reasoning, tool;
    json_t *tool_calls; /* array of OpenAI tool_call objects */
    int tool_calls_sent;
} text_out;
void text_out_init(text_out *t, char **stop, int n_stop, bool parse_tags, bool parse_tools,
                   bool start_in_reasoning);
void text_out_free(text_out *t);
/* Feeds generated text; appends what may be shown to the deltas. Returns true when a stop
 * string matched (generation should end). */
bool text_out_push(text_out *t, const char *text, strbuf *content, strbuf *reasoning);
/* End of generation: flushes held text and resolves held JSON tool calls. */
void text_out_finish(text_out *t, strbuf *content, strbuf *reasoning);

/* ---- metrics (Prometheus text) ---- */
void metrics_request(int status);
void metrics_tokens(int prompt, int cached, int generated);
void metrics_ttft(double seconds);
void metrics_token_latency(double seconds);
void metrics_render(strbuf *out, scheduler *s);

/* ---- the running server ---- */
typedef struct server {
    server_config cfg;
    char *model_id;
    _Atomic int state; /* 0 loading, 1 ready, 2 stopping, 3 failed */
    _Atomic int load_stage;
    char load_error[512];
    model *m;
    tokenizer *tok;
    chat_template *tmpl;
    thread_pool *pool;
    scheduler *sched;
    int ctx;
    _Atomic int active; /* requests between submit and response end */
    _Atomic uint64_t next_id;
    time_t started;
} server;

enum { STATE_LOADING, STATE_READY, STATE_STOPPING, STATE_FAILED };

/* A response handed back to http.c: status, body (malloc'd) and content type, or a stream. */
struct MHD_Connection;
typedef struct http_reply {
    int status;
    char *body;
    size_t len;
    const char *content_type;
    void *stream;      /* a job to stream as SSE instead of body */
    const char *allow; /* 405: the Allow header */
} http_reply;

void reply_json(http_reply *out, int status, json_t *v); /* steals v */
void reply_error(http_reply *out, const api_error *e);

/* Handles POST /v1/chat/completions and /v1/completions. */
void handle_generation(server *srv, struct MHD_Connection *conn, enum api_kind kind,
                       const char *body, size_t len, http_reply *out);
/* The SSE reader MHD calls for a streamed job, and its release. */
ssize_t job_stream_read(void *cls, uint64_t pos, char *buf, size_t max);
void job_stream_release(void *cls);

bool client_gone(struct MHD_Connection *conn);

#endif
