/*
 * output.c — the text of one choice on its way to the client. Generated text passes two
 * filters, each of which holds back a tail that might be the start of something it looks for
 * (so matches work across token boundaries):
 *   1. stop strings: at the first match everything from it on is dropped and generation ends;
 *   2. tags: <think>...</think> goes to reasoning_content, <tool_call>{json}</tool_call>
 *      (Hermes / Qwen) becomes a tool call. With tools given, a reply that is a bare JSON
 *      object {"name": ..., "parameters": {...}} (Llama 3.1, maybe after <|python_tag|>) is
 *      held back and becomes a tool call at the end if it parses as one.
 */
#include "server/internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum { MODE_CONTENT, MODE_REASONING, MODE_TOOL };

static const char THINK_OPEN[] = "<think>", THINK_CLOSE[] = "</think>";
static const char TOOL_OPEN[] = "<tool_call>", TOOL_CLOSE[] = "</tool_call>";
static const char PYTHON_TAG[] = "<|python_tag|>";

void text_out_init(text_out *t, char **stop, int n_stop, bool parse_tags, bool parse_tools,
                   bool start_in_reasoning) {
    *t = (text_out){.stop = stop,
                    .n_stop = n_stop,
                    .parse_tags = parse_tags,
                    .parse_tools = parse_tools && parse_tags};
    t->mode = start_in_reasoning ? MODE_REASONING : MODE_CONTENT;
    t->tool_calls = json_array();
}

void text_out_free(text_out *t) {
    sb_free(&t->pending);
    sb_free(&t->content);
    sb_free(&t->reasoning);
    sb_free(&t->tool);
    sb_free(&t->held);
    sb_free(&t->held_tags);
    json_decref(t->tool_calls);
}

/* Length of the longest tail of s[0..n) that is a proper prefix of one of the markers. */
static size_t tail_overlap(const char *s, size_t n, const char *const *markers, int n_markers) {
    size_t best = 0;
    for (int m = 0; m < n_markers; m++) {
        size_t ml = strlen(markers[m]);
        for (size_t k = ml - 1 < n ? ml - 1 : n; k > best; k--)
            if (!memcmp(s + n - k, markers[m], k)) {
                best = k;
                break;
            }
    }
    return best;
}

/* The earliest occurrence of any marker in s[0..n): its offset, and which one in *which. */
static const char *first_marker(const char *s, size_t n, const char *const *markers, int n_markers,
                                int *which) {
    const char *best = NULL;
    for (int m = 0; m < n_markers; m++) {
        const char *p = memmem(s, n, markers[m], strlen(markers[m]));
        if (p && (!best || p < best)) best = p, *which = m;
    }
    return best;
}

static char *call_id(void) {
    static _Atomic uint64_t counter;
    uint64_t x = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull ^ ++counter * 0xBF58476D1CE4E5B9ull;
    return xasprintf("call_%016llx", (unsigned long long)x);
}

/* {"name": ..., "arguments"|"parameters": {...} or "..."} -> an OpenAI tool call, or NULL. */
static json_t *tool_call_from_json(const char *text, size_t len) {
    json_t *v = json_loadb(text, len, 0, NULL);
    if (!json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    const char *name = json_string_value(json_object_get(v, "name"));
    json_t *args = json_object_get(v, "arguments");
    if (!args) args = json_object_get(v, "parameters");
    if (!name || (args && !json_is_object(args) && !json_is_string(args))) {
        json_decref(v);
        return NULL;
    }
    char *arg_text = !args                  ? xstrdup("{}")
                     : json_is_string(args) ? xstrdup(json_string_value(args))
                                            : json_dumps(args, JSON_COMPACT);
    char *id = call_id();
    json_t *call = json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", id, "type", "function", "function",
                             "name", name, "arguments", arg_text);
    free(id);
    free(arg_text);
    json_decref(v);
    return call;
}

/* Could the reply so far still be a Llama 3.1 JSON tool call? */
static bool may_be_json_call(const char *s, size_t n) {
    while (n && isspace((unsigned char)*s)) s++, n--;
    size_t tl = strlen(PYTHON_TAG);
    if (n >= tl && !memcmp(s, PYTHON_TAG, tl)) {
        s += tl;
        n -= tl;
        while (n && isspace((unsigned char)*s)) s++, n--;
    } else if (n < tl && !memcmp(s, PYTHON_TAG, n)) {
        return true;
    }
    return n == 0 || *s == '{';
}

static void emit_content(text_out *t, const char *s, size_t n, strbuf *out) {
    if (t->strip_ws) { /* whitespace after a reasoning block or a tool call is not content */
        while (n && isspace((unsigned char)*s)) s++, n--;
        if (n == 0) return;
        t->strip_ws = false;
    }
    if (t->parse_tools && !t->content_begun && json_array_size(t->tool_calls) == 0) {
        sb_append(&t->held, s, n);
        if (may_be_json_call(t->held.data, t->held.len)) return; /* maybe a JSON tool call */
        s = t->held.data;
        n = t->held.len;
    }
    t->content_begun = true;
    sb_append(&t->content, s, n);
    sb_append(out, s, n);
    t->held.len = 0;
}

static void end_tool_call(text_out *t, strbuf *content) {
    json_t *call = tool_call_from_json(t->tool.data ? t->tool.data : "", t->tool.len);
    if (call) {
        json_array_append_new(t->tool_calls, call);
        t->strip_ws = true;
    } else { /* not a valid call: show it as it was written */
        emit_content(t, TOOL_OPEN, strlen(TOOL_OPEN), content);
        emit_content(t, t->tool.data ? t->tool.data : "", t->tool.len, content);
        emit_content(t, TOOL_CLOSE, strlen(TOOL_CLOSE), content);
    }
    t->tool.len = 0;
}

/* Runs text that passed the stop filter through the tag filter; final flushes its tail. */
static void route(text_out *t, const char *text, size_t len, bool final, strbuf *content,
                  strbuf *reasoning) {
    if (!t->parse_tags) {
        t->content_begun = true;
        sb_append(&t->content, text, len);
        sb_append(content, text, len);
        return;
    }
    strbuf work = {0};
    sb_append(&work, t->held_tags.data ? t->held_tags.data : "", t->held_tags.len);
    sb_append(&work, text, len);
    t->held_tags.len = 0;
    const char *s = work.data;
    size_t n = work.len;
    for (;;) {
        const char *markers[2];
        int nm = 0;
        if (t->mode == MODE_CONTENT) {
            markers[nm++] = THINK_OPEN;
            if (t->parse_tools) markers[nm++] = TOOL_OPEN;
        } else {
            markers[nm++] = t->mode == MODE_REASONING ? THINK_CLOSE : TOOL_CLOSE;
        }
        int which = 0;
        const char *at = first_marker(s, n, markers, nm, &which);
        size_t upto = at ? (size_t)(at - s) : n - (final ? 0 : tail_overlap(s, n, markers, nm));
        if (t->mode == MODE_CONTENT) {
            emit_content(t, s, upto, content);
        } else if (t->mode == MODE_REASONING) {
            sb_append(&t->reasoning, s, upto);
            sb_append(reasoning, s, upto);
        } else {
            sb_append(&t->tool, s, upto);
        }
        if (!at) {
            sb_append(&t->held_tags, s + upto, n - upto);
            break;
        }
        size_t ml = strlen(markers[which]);
        if (t->mode == MODE_CONTENT) {
            t->mode = markers[which] == THINK_OPEN ? MODE_REASONING : MODE_TOOL;
        } else if (t->mode == MODE_TOOL) {
            end_tool_call(t, content);
            t->mode = MODE_CONTENT;
        } else {
            t->mode = MODE_CONTENT;
            t->strip_ws = true;
        }
        s = at + ml;
        n -= upto + ml;
    }
    sb_free(&work);
}

bool text_out_push(text_out *t, const char *text, strbuf *content, strbuf *reasoning) {
    if (t->stopped) return true;
    sb_puts(&t->pending, text);
    const char *s = t->pending.data;
    size_t n = t->pending.len;
    int which = 0;
    const char *at = first_marker(s, n, (const char *const *)t->stop, t->n_stop, &which);
    if (at) {
        route(t, s, (size_t)(at - s), false, content, reasoning);
        t->pending.len = 0;
        t->stopped = true;
        return true;
    }
    size_t keep = tail_overlap(s, n, (const char *const *)t->stop, t->n_stop);
    route(t, s, n - keep, false, content, reasoning);
    sb_consume(&t->pending, n - keep);
    return false;
}

void text_out_finish(text_out *t, strbuf *content, strbuf *reasoning) {
    route(t, t->pending.data ? t->pending.data : "", t->pending.len, true, content, reasoning);
    t->pending.len = 0;
    if (t->mode == MODE_TOOL) { /* an unterminated call: accept it if it parses */
        end_tool_call(t, content);
        t->mode = MODE_CONTENT;
    }
    if (t->held.len) { /* the whole reply looked like JSON: is it a Llama 3.1 tool call? */
        const char *s = t->held.data;
        size_t n = t->held.len;
        while (n && isspace((unsigned char)*s)) s++, n--;
        if (n >= strlen(PYTHON_TAG) && !memcmp(s, PYTHON_TAG, strlen(PYTHON_TAG)))
            s += strlen(PYTHON_TAG), n -= strlen(PYTHON_TAG);
        json_t *call = tool_call_from_json(s, n);
        if (call) {
            json_array_append_new(t->tool_calls, call);
        } else {
            t->content_begun = true;
            sb_append(&t->content, t->held.data, t->held.len);
            sb_append(content, t->held.data, t->held.len);
        }
        t->held.len = 0;
    }
}
