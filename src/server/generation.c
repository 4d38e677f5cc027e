/*
 * generation.c — POST /v1/chat/completions and /v1/completions. A request becomes prompts
 * (through the chat template and the tokenizer), each prompt n choices, each choice one
 * sequence in the scheduler. The engine thread calls back with every token; the text goes
 * through the choice's filters (output.c) and, when streaming, straight into the job's SSE
 * buffer, which the connection's thread drains (job_stream_read). A job is freed when the
 * engine has finished every choice and the HTTP side has let go (a reference count).
 */
#include "server/internal.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef struct job job;

typedef struct choice {
    job *jb;
    int index, prompt_index;
    detokenizer *dt;
    text_out out;
    bool sent_role;
    int generated;
    double t_last;
    int32_t last_token; /* -1 before the first */
    json_t *logprobs;   /* chat: the content list; completions: {tokens, token_logprobs, ...} */
    size_t text_offset;
    gen_result res;
    bool done;
} choice;

struct job {
    server *srv;
    struct MHD_Connection *conn;
    api_request req;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int refs;
    _Atomic bool cancel;
    choice *choices;
    int n_alloc, n_choices, n_done;
    int32_t **prompt_tokens;
    int *n_prompt_tokens;
    int n_prompts;
    bool start_in_reasoning;
    strbuf sse;
    bool sse_done; /* the last bytes ([DONE]) are in sse */
    bool client_left;
    char id[48];
    long long created;
    double t_start, t_first, last_write;
    int status;
    char error[512];
};

static const char *object_name(const job *jb, bool chunk) {
    if (jb->req.kind == API_CHAT) return chunk ? "chat.completion.chunk" : "chat.completion";
    return "text_completion";
}

/* ---- job lifetime ---- */

static void job_log(job *jb) {
    int prompt = 0, cached = 0, generated = 0;
    double decode = 0;
    for (int i = 0; i < jb->n_choices; i++) {
        const choice *c = &jb->choices[i];
        if (c->index % jb->req.n == 0) { /* count each prompt once */
            prompt += c->res.prompt_tokens;
            cached += c->res.cached_tokens;
        }
        generated += c->generated;
        if (c->res.decode_s > decode) decode = c->res.decode_s;
    }
    double total = now_seconds() - jb->t_start;
    double ttft = jb->t_first > 0 ? jb->t_first - jb->t_start : 0;
    log_info("request %s model=%s status=%d prompt=%d cached=%d generated=%d ttft=%.3fs "
             "tok/s=%.1f time=%.3fs%s%s",
             jb->id, jb->srv->model_id, jb->status, prompt, cached, generated, ttft,
             decode > 0 ? (generated - jb->n_choices) / decode : 0.0, total,
             jb->error[0] ? " error=" : "", jb->error);
    metrics_request(jb->status);
    metrics_tokens(prompt, cached, generated);
    if (jb->t_first > 0) metrics_ttft(ttft);
}

static void job_free(job *jb) {
    job_log(jb);
    for (int i = 0; i < jb->n_alloc; i++) {
        detokenizer_free(jb->choices[i].dt);
        text_out_free(&jb->choices[i].out);
        json_decref(jb->choices[i].logprobs);
    }
    for (int i = 0; i < jb->n_prompts; i++) free(jb->prompt_tokens[i]);
    free(jb->prompt_tokens);
    free(jb->n_prompt_tokens);
    free(jb->choices);
    sb_free(&jb->sse);
    api_request_free(&jb->req);
    pthread_mutex_destroy(&jb->lock);
    pthread_cond_destroy(&jb->cond);
    atomic_fetch_sub(&jb->srv->active, 1);
    free(jb);
}

/* Drops one reference; the caller holds the lock, which this releases. */
static void job_unref_unlock(job *jb) {
    bool last = --jb->refs == 0;
    pthread_mutex_unlock(&jb->lock);
    if (last) job_free(jb);
}

/* ---- JSON pieces ---- */

static json_t *token_bytes(const char *s) {
    json_t *a = json_array();
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        json_array_append_new(a, json_integer(*p));
    return a;
}

/* The text an alternative token would have added after `after`: decoding it alone would lose
 * a leading space to decoders that strip the first one (SentencePiece's). */
static char *alt_text(const job *jb, int32_t after, int32_t id) {
    int32_t pair[2] = {after, id};
    char *one = tokenizer_decode(jb->srv->tok, pair, 1, false);
    char *two = tokenizer_decode(jb->srv->tok, pair, 2, false);
    char *out;
    if (one && two && !strncmp(one, two, strlen(one)))
        out = xstrdup(two + strlen(one));
    else
        out = tokenizer_decode(jb->srv->tok, &id, 1, false);
    free(one);
    free(two);
    return out ? out : xstrdup("");
}

/* The logprobs of one token in the request's format; appended to the choice's record and
 * returned (borrowed) for a streamed chunk. */
static json_t *record_logprobs(choice *c, const gen_token *t, const char *piece) {
    job *jb = c->jb;
    /* The chosen token's text is what it added to the output, so the tokens spell the text. */
    const char *text = piece;
    int32_t anchor = c->last_token >= 0 ? c->last_token : t->id;
    json_t *entry;
    if (jb->req.kind == API_CHAT) {
        json_t *top = json_array();
        for (int i = 0; i < t->n_top; i++) {
            char *alt = alt_text(jb, anchor, t->top_ids[i]);
            json_array_append_new(top,
                                  json_pack("{s:s, s:f, s:o}", "token", alt, "logprob",
                                            (double)t->top_logprobs[i], "bytes", token_bytes(alt)));
            free(alt);
        }
        entry = json_pack("{s:s, s:f, s:o, s:o}", "token", text, "logprob", (double)t->logprob,
                          "bytes", token_bytes(text), "top_logprobs", top);
        if (!c->logprobs) c->logprobs = json_array();
        json_array_append(c->logprobs, entry);
    } else {
        json_t *top = json_object();
        for (int i = 0; i < t->n_top; i++) {
            char *alt = alt_text(jb, anchor, t->top_ids[i]);
            json_object_set_new(top, alt, json_real(t->top_logprobs[i]));
            free(alt);
        }
        entry = json_pack("{s:[s], s:[f], s:[o], s:[I]}", "tokens", text, "token_logprobs",
                          (double)t->logprob, "top_logprobs", top, "text_offset",
                          (json_int_t)c->text_offset);
        if (!c->logprobs)
            c->logprobs = json_pack("{s:[], s:[], s:[], s:[]}", "tokens", "token_logprobs",
                                    "top_logprobs", "text_offset");
        const char *keys[] = {"tokens", "token_logprobs", "top_logprobs", "text_offset"};
        for (size_t k = 0; k < ARRAY_LEN(keys); k++)
            json_array_append(json_object_get(c->logprobs, keys[k]),
                              json_array_get(json_object_get(entry, keys[k]), 0));
    }
    c->text_offset += strlen(piece);
    return entry;
}

static json_t *chunk_base(const job *jb) {
    json_t *o = json_pack("{s:s, s:s, s:I, s:s}", "id", jb->id, "object", object_name(jb, true),
                          "created", (json_int_t)jb->created, "model", jb->srv->model_id);
    if (jb->req.kind == API_CHAT)
        json_object_set_new(o, "system_fingerprint", json_string("kiln-" KILN_VERSION));
    if (jb->req.include_usage) json_object_set_new(o, "usage", json_null());
    return o;
}

static void sse_event(job *jb, json_t *v) {
    char *s = json_dumps(v, JSON_COMPACT);
    sb_puts(&jb->sse, "data: ");
    sb_puts(&jb->sse, s);
    sb_puts(&jb->sse, "\n\n");
    free(s);
    json_decref(v);
    pthread_cond_broadcast(&jb->cond);
}

/* One streamed chunk for choice c (steals logprobs); finish may be NULL. */
static void stream_chunk(choice *c, const strbuf *content, const strbuf *reasoning,
                         json_t *new_calls, json_t *logprobs, const char *finish) {
    job *jb = c->jb;
    json_t *ch = json_pack("{s:i}", "index", c->index);
    if (jb->req.kind == API_CHAT) {
        json_t *delta = json_object();
        if (!c->sent_role) {
            json_object_set_new(delta, "role", json_string("assistant"));
            c->sent_role = true;
        }
        if (content->len)
            json_object_set_new(delta, "content", json_stringn(content->data, content->len));
        if (reasoning->len)
            json_object_set_new(delta, "reasoning_content",
                                json_stringn(reasoning->data, reasoning->len));
        if (new_calls) json_object_set_new(delta, "tool_calls", new_calls);
        json_object_set_new(ch, "delta", delta);
        json_object_set_new(ch, "logprobs",
                            logprobs ? json_pack("{s:[o]}", "content", logprobs) : json_null());
    } else {
        json_object_set_new(ch, "text",
                            json_stringn(content->data ? content->data : "", content->len));
        json_object_set_new(ch, "logprobs", logprobs ? logprobs : json_null());
    }
    json_object_set_new(ch, "finish_reason", finish ? json_string(finish) : json_null());
    json_t *o = chunk_base(jb);
    json_object_set_new(o, "choices", json_pack("[o]", ch));
    sse_event(jb, o);
}

/* Tool calls found since the last chunk, as stream deltas (with their index). */
static json_t *new_tool_calls(choice *c) {
    size_t n = json_array_size(c->out.tool_calls);
    if ((int)n == c->out.tool_calls_sent) return NULL;
    json_t *a = json_array();
    for (size_t i = (size_t)c->out.tool_calls_sent; i < n; i++) {
        json_t *call = json_deep_copy(json_array_get(c->out.tool_calls, i));
        json_object_set_new(call, "index", json_integer((json_int_t)i));
        json_array_append_new(a, call);
    }
    c->out.tool_calls_sent = (int)n;
    return a;
}

static json_t *usage_json(const job *jb) {
    int prompt = 0, cached = 0, generated = 0;
    for (int i = 0; i < jb->n_choices; i++) {
        const choice *c = &jb->choices[i];
        if (c->index % jb->req.n == 0) {
            prompt += c->res.prompt_tokens;
            cached += c->res.cached_tokens;
        }
        generated += c->generated;
    }
    return json_pack("{s:i, s:i, s:i, s:{s:i}}", "prompt_tokens", prompt, "completion_tokens",
                     generated, "total_tokens", prompt + generated, "prompt_tokens_details",
                     "cached_tokens", cached);
}

static const char *finish_name(const choice *c) {
    if (json_array_size(c->out.tool_calls) > 0) return "tool_calls";
    return c->res.finish == FINISH_LENGTH ? "length" : "stop";
}

/* ---- engine callbacks (engine thread) ---- */

static int on_token(void *ctx, const gen_token *t) {
    choice *c = ctx;
    job *jb = c->jb;
    pthread_mutex_lock(&jb->lock);
    double now = now_seconds();
    if (jb->t_first == 0) jb->t_first = now;
    if (c->t_last > 0) metrics_token_latency(now - c->t_last);
    c->t_last = now;
    c->generated++;
    const char *piece = detokenizer_push(c->dt, t->id);
    strbuf content = {0}, reasoning = {0};
    bool stop = text_out_push(&c->out, piece, &content, &reasoning);
    json_t *lp = jb->req.logprobs ? record_logprobs(c, t, piece) : NULL;
    c->last_token = t->id;
    if (jb->req.stream) {
        json_t *calls = new_tool_calls(c);
        if (content.len || reasoning.len || calls || lp)
            stream_chunk(c, &content, &reasoning, calls, lp, NULL);
    } else {
        json_decref(lp);
    }
    sb_free(&content);
    sb_free(&reasoning);
    pthread_mutex_unlock(&jb->lock);
    return stop;
}

static void finish_stream(job *jb) {
    if (jb->req.include_usage) {
        json_t *o = chunk_base(jb);
        json_object_set_new(o, "choices", json_array());
        json_object_set_new(o, "usage", usage_json(jb));
        sse_event(jb, o);
    }
    sb_puts(&jb->sse, "data: [DONE]\n\n");
    jb->sse_done = true;
}

static void on_done(void *ctx, const gen_result *r) {
    choice *c = ctx;
    job *jb = c->jb;
    pthread_mutex_lock(&jb->lock);
    c->res = *r;
    strbuf content = {0}, reasoning = {0};
    if (!c->out.stopped) text_out_push(&c->out, detokenizer_flush(c->dt), &content, &reasoning);
    text_out_finish(&c->out, &content, &reasoning);
    if (r->finish == FINISH_ERROR) {
        snprintf(jb->error, sizeof jb->error, "%s", r->error);
        jb->status = 500;
    }
    if (jb->req.stream && r->finish != FINISH_ERROR) {
        json_t *calls = new_tool_calls(c);
        if (content.len || reasoning.len || calls)
            stream_chunk(c, &content, &reasoning, calls, NULL, NULL);
        strbuf none = {0};
        stream_chunk(c, &none, &none, NULL, NULL, finish_name(c));
    }
    sb_free(&content);
    sb_free(&reasoning);
    c->done = true;
    if (++jb->n_done == jb->n_choices && jb->req.stream) {
        if (jb->status == 500) { /* an error after the headers went out: say so in the stream */
            api_error e;
            api_fail(&e, 500, NULL, "engine_error", "%s", jb->error);
            char *body = api_error_json(&e);
            sb_printf(&jb->sse, "data: %s\n\n", body);
            free(body);
            sb_puts(&jb->sse, "data: [DONE]\n\n");
            jb->sse_done = true;
        } else {
            finish_stream(jb);
        }
    }
    pthread_cond_broadcast(&jb->cond);
    job_unref_unlock(jb);
}

/* ---- building the prompts ---- */

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !memcmp(s + n - m, suffix, m);
}

static int tokenize_prompts(server *srv, job *jb, api_error *e) {
    api_request *r = &jb->req;
    if (r->kind == API_CHAT) {
        if (!srv->tmpl)
            return api_fail(e, 400, "messages", "no_chat_template",
                            "the model \"%s\" has no chat template (use /v1/completions, or start "
                            "the server with --chat-template FILE)",
                            srv->model_id);
        char *text =
            chat_template_render(srv->tmpl, r->messages, r->tools, true, r->template_kwargs);
        if (!text)
            return api_fail(e, 400, "messages", "template_error", "the chat template failed: %s",
                            kiln_last_error());
        jb->start_in_reasoning = ends_with(text, "<think>\n") || ends_with(text, "<think>");
        jb->prompt_tokens = xcalloc(1, sizeof(int32_t *));
        jb->n_prompt_tokens = xcalloc(1, sizeof(int));
        size_t n = 0;
        int rc = tokenizer_encode(srv->tok, text, strlen(text), false, &jb->prompt_tokens[0], &n);
        free(text);
        if (rc < 0) return api_fail(e, 400, "messages", "invalid_text", "%s", kiln_last_error());
        jb->n_prompt_tokens[0] = (int)n;
        jb->n_prompts = 1;
        return 0;
    }
    jb->prompt_tokens = xcalloc((size_t)r->n_prompts, sizeof(int32_t *));
    jb->n_prompt_tokens = xcalloc((size_t)r->n_prompts, sizeof(int));
    for (int i = 0; i < r->n_prompts; i++) {
        jb->n_prompts++;
        if (r->prompt_ids[i]) {
            jb->prompt_tokens[i] = xmalloc((size_t)r->n_prompt_ids[i] * sizeof(int32_t));
            memcpy(jb->prompt_tokens[i], r->prompt_ids[i],
                   (size_t)r->n_prompt_ids[i] * sizeof(int32_t));
            jb->n_prompt_tokens[i] = r->n_prompt_ids[i];
            for (int k = 0; k < r->n_prompt_ids[i]; k++)
                if (r->prompt_ids[i][k] >= srv->m->cfg.vocab_size)
                    return api_fail(e, 400, "prompt", "invalid_value",
                                    "prompt token %d is out of range (vocabulary of %d)",
                                    r->prompt_ids[i][k], srv->m->cfg.vocab_size);
            continue;
        }
        size_t n = 0;
        if (tokenizer_encode(srv->tok, r->prompts[i], strlen(r->prompts[i]), true,
                             &jb->prompt_tokens[i], &n) < 0)
            return api_fail(e, 400, "prompt", "invalid_text", "%s", kiln_last_error());
        jb->n_prompt_tokens[i] = (int)n;
    }
    return 0;
}

/* The completion budget of each prompt; a 400 naming both numbers when it cannot fit. */
static int budget(server *srv, job *jb, int prompt_index, int *max_tokens, api_error *e) {
    api_request *r = &jb->req;
    int n = jb->n_prompt_tokens[prompt_index], ctx = srv->ctx;
    const char *param = r->kind == API_CHAT ? "messages" : "prompt";
    if (n == 0) return api_fail(e, 400, param, "invalid_value", "the prompt is empty");
    if (n >= ctx)
        return api_fail(e, 400, param, "context_length_exceeded",
                        "This model's maximum context length is %d tokens. However, the prompt "
                        "has %d tokens%s.",
                        ctx, n, r->max_tokens_given ? " (before max_tokens)" : "");
    if (r->max_tokens_given && (long long)n + r->max_tokens > ctx)
        return api_fail(e, 400, "max_tokens", "context_length_exceeded",
                        "This model's maximum context length is %d tokens. However, you requested "
                        "%lld tokens (%d in the prompt, %d for the completion).",
                        ctx, (long long)n + r->max_tokens, n, r->max_tokens);
    *max_tokens = r->max_tokens > 0 && r->max_tokens < ctx - n ? r->max_tokens : ctx - n;
    return 0;
}

static int submit_all(server *srv, job *jb, api_error *e) {
    api_request *r = &jb->req;
    const int32_t *eos;
    size_t n_eos = tokenizer_eos_ids(srv->tok, &eos);
    for (int i = 0; i < r->n_bias; i++)
        if (r->bias_ids[i] >= srv->m->cfg.vocab_size)
            return api_fail(e, 400, "logit_bias", "invalid_value",
                            "logit_bias token %d is out of range (vocabulary of %d)",
                            r->bias_ids[i], srv->m->cfg.vocab_size);
    int *budgets = xmalloc((size_t)jb->n_prompts * sizeof(int));
    for (int p = 0; p < jb->n_prompts; p++)
        if (budget(srv, jb, p, &budgets[p], e) < 0) {
            free(budgets);
            return -1;
        }
    static _Atomic uint64_t seed_counter;
    for (int i = 0; i < jb->n_choices; i++) {
        choice *c = &jb->choices[i];
        int p = c->prompt_index;
        gen_request g = {.prompt = jb->prompt_tokens[p],
                         .n_prompt = jb->n_prompt_tokens[p],
                         .max_tokens = budgets[p],
                         .sampling = r->sampling,
                         .bias_ids = r->bias_ids,
                         .bias_values = r->bias_values,
                         .n_bias = r->n_bias,
                         .stop_ids = eos,
                         .n_stop = (int)n_eos,
                         .logprobs = r->logprobs,
                         .top_logprobs = r->top_logprobs,
                         .cancel = &jb->cancel,
                         .on_token = on_token,
                         .on_done = on_done,
                         .ctx = c};
        /* Without a seed every choice draws differently; with one, choice i uses seed + i. */
        g.sampling.seed = r->seed_given ? r->sampling.seed + (uint64_t)(i % r->n)
                                        : (uint64_t)time(NULL) * 1000003u + ++seed_counter;
        pthread_mutex_lock(&jb->lock);
        jb->refs++;
        pthread_mutex_unlock(&jb->lock);
        enum submit_status st = scheduler_submit(srv->sched, &g);
        if (st != SUBMIT_OK) {
            pthread_mutex_lock(&jb->lock);
            jb->refs--;
            jb->n_choices = i; /* the ones submitted finish (cancelled) and release the job */
            pthread_mutex_unlock(&jb->lock);
            atomic_store(&jb->cancel, true);
            free(budgets);
            if (st == SUBMIT_QUEUE_FULL)
                return api_fail(e, 429, NULL, "queue_full", "%s; retry later", kiln_last_error());
            if (st == SUBMIT_STOPPED)
                return api_fail(e, 503, NULL, "shutting_down", "%s", kiln_last_error());
            return api_fail(e, 400, r->kind == API_CHAT ? "messages" : "prompt", "invalid_value",
                            "%s", kiln_last_error());
        }
    }
    free(budgets);
    return 0;
}

static job *job_new(server *srv, struct MHD_Connection *conn) {
    job *jb = xcalloc(1, sizeof *jb);
    jb->srv = srv;
    jb->conn = conn;
    jb->refs = 1; /* the HTTP side */
    jb->status = 200;
    pthread_mutex_init(&jb->lock, NULL);
    pthread_cond_init(&jb->cond, NULL);
    jb->t_start = jb->last_write = now_seconds();
    jb->created = (long long)time(NULL);
    atomic_fetch_add(&srv->active, 1);
    return jb;
}

/* ---- the non-streamed response ---- */

static json_t *full_response(job *jb) {
    json_t *choices = json_array();
    for (int i = 0; i < jb->n_choices; i++) {
        choice *c = &jb->choices[i];
        json_t *ch = json_pack("{s:i, s:s}", "index", c->index, "finish_reason", finish_name(c));
        if (jb->req.kind == API_CHAT) {
            bool calls = json_array_size(c->out.tool_calls) > 0;
            json_t *msg = json_pack("{s:s}", "role", "assistant");
            json_object_set_new(msg, "content",
                                calls && c->out.content.len == 0
                                    ? json_null()
                                    : json_stringn(c->out.content.data ? c->out.content.data : "",
                                                   c->out.content.len));
            if (c->out.reasoning.len)
                json_object_set_new(msg, "reasoning_content",
                                    json_stringn(c->out.reasoning.data, c->out.reasoning.len));
            if (calls) json_object_set(msg, "tool_calls", c->out.tool_calls);
            json_object_set_new(ch, "message", msg);
            json_object_set_new(ch, "logprobs",
                                c->logprobs ? json_pack("{s:O}", "content", c->logprobs)
                                            : json_null());
        } else {
            json_object_set_new(
                ch, "text",
                json_stringn(c->out.content.data ? c->out.content.data : "", c->out.content.len));
            json_object_set_new(ch, "logprobs",
                                c->logprobs ? json_incref(c->logprobs) : json_null());
        }
        json_array_append_new(choices, ch);
    }
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:o, s:o}", "id", jb->id, "object",
                          object_name(jb, false), "created", (json_int_t)jb->created, "model",
                          jb->srv->model_id, "choices", choices, "usage", usage_json(jb));
    if (jb->req.kind == API_CHAT)
        json_object_set_new(o, "system_fingerprint", json_string("kiln-" KILN_VERSION));
    return o;
}

static void wait_all(job *jb) {
    pthread_mutex_lock(&jb->lock);
    while (jb->n_done < jb->n_choices) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&jb->cond, &jb->lock, &ts);
        if (!jb->client_left && client_gone(jb->conn)) {
            jb->client_left = true;
            atomic_store(&jb->cancel, true);
        }
    }
    pthread_mutex_unlock(&jb->lock);
}

void handle_generation(server *srv, struct MHD_Connection *conn, enum api_kind kind,
                       const char *body, size_t len, http_reply *out) {
    api_error e;
    job *jb = job_new(srv, conn);
    snprintf(jb->id, sizeof jb->id, "%s-%llx%06llx", kind == API_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)jb->created,
             (unsigned long long)atomic_fetch_add(&srv->next_id, 1));
    int rc = api_request_parse(&jb->req, kind, body, len, srv->cfg.defaults, srv->model_id,
                               srv->cfg.max_n, &e);
    if (rc == 0 && tokenize_prompts(srv, jb, &e) < 0) rc = -1;
    if (rc == 0) {
        api_request *r = &jb->req;
        jb->n_alloc = jb->n_choices = jb->n_prompts * r->n;
        jb->choices = xcalloc((size_t)jb->n_choices, sizeof(choice));
        for (int i = 0; i < jb->n_choices; i++) {
            choice *c = &jb->choices[i];
            c->jb = jb;
            c->index = i;
            c->prompt_index = i / r->n;
            c->last_token = -1;
            c->dt = detokenizer_new(srv->tok, true);
            text_out_init(&c->out, r->stop, r->n_stop, kind == API_CHAT, r->tools != NULL,
                          jb->start_in_reasoning);
        }
        rc = submit_all(srv, jb, &e);
    }
    if (rc < 0) {
        reply_error(out, &e);
        pthread_mutex_lock(&jb->lock);
        jb->status = e.status;
        snprintf(jb->error, sizeof jb->error, "%s", e.message);
        job_unref_unlock(jb);
        return;
    }
    if (jb->req.stream) {
        out->status = 200;
        out->stream = jb; /* http.c streams it and calls job_stream_release */
        return;
    }
    wait_all(jb);
    pthread_mutex_lock(&jb->lock);
    if (jb->client_left) {
        jb->status = 499;
        out->status = 499;
    } else if (jb->status == 500) {
        api_fail(&e, 500, NULL, "engine_error", "%s", jb->error);
        reply_error(out, &e);
    } else {
        reply_json(out, 200, full_response(jb));
    }
    job_unref_unlock(jb);
}

/* ---- streaming (the connection's thread) ---- */

ssize_t job_stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    job *jb = cls;
    pthread_mutex_lock(&jb->lock);
    for (;;) {
        if (jb->sse.len > 0) {
            size_t n = jb->sse.len < max ? jb->sse.len : max;
            memcpy(buf, jb->sse.data, n);
            sb_consume(&jb->sse, n);
            jb->last_write = now_seconds();
            pthread_mutex_unlock(&jb->lock);
            return (ssize_t)n;
        }
        if (jb->sse_done) {
            pthread_mutex_unlock(&jb->lock);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&jb->cond, &jb->lock, &ts);
        if (jb->sse.len == 0 && !jb->sse_done && client_gone(jb->conn)) {
            jb->client_left = true;
            atomic_store(&jb->cancel, true);
            pthread_mutex_unlock(&jb->lock);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        /* A comment line now and then keeps proxies and clients from timing out while a long
         * prompt is processed. */
        if (jb->sse.len == 0 && now_seconds() - jb->last_write >= jb->srv->cfg.keepalive_s)
            sb_puts(&jb->sse, ": keep-alive\n\n");
    }
}

void job_stream_release(void *cls) {
    job *jb = cls;
    pthread_mutex_lock(&jb->lock);
    if (!jb->sse_done) { /* the connection ended early: stop generating */
        jb->client_left = true;
        atomic_store(&jb->cancel, true);
    }
    if (jb->client_left && jb->status == 200) jb->status = 499;
    job_unref_unlock(jb);
}
