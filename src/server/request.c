/*
 * request.c — turns a request body into an api_request, checking every field the way
 * OpenAI's API does: each wrong type or out-of-range value is a 400 naming the parameter, and
 * a field kiln does not support is refused by name rather than silently ignored. Deployment
 * "parameters" give the defaults for fields a request leaves out.
 */
#include "server/internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STOP    4
#define MAX_PROMPTS 64
#define MAX_TOOLS   128

static const char *chat_fields[] = {"model",
                                    "messages",
                                    "max_tokens",
                                    "max_completion_tokens",
                                    "temperature",
                                    "top_p",
                                    "top_k",
                                    "min_p",
                                    "repetition_penalty",
                                    "presence_penalty",
                                    "frequency_penalty",
                                    "logit_bias",
                                    "seed",
                                    "stop",
                                    "n",
                                    "stream",
                                    "stream_options",
                                    "logprobs",
                                    "top_logprobs",
                                    "tools",
                                    "tool_choice",
                                    "chat_template_kwargs",
                                    "user",
                                    "response_format",
                                    "parallel_tool_calls"};
static const char *completion_fields[] = {"model",
                                          "prompt",
                                          "max_tokens",
                                          "temperature",
                                          "top_p",
                                          "top_k",
                                          "min_p",
                                          "repetition_penalty",
                                          "presence_penalty",
                                          "frequency_penalty",
                                          "logit_bias",
                                          "seed",
                                          "stop",
                                          "n",
                                          "stream",
                                          "stream_options",
                                          "logprobs",
                                          "user",
                                          "echo",
                                          "suffix",
                                          "best_of"};

static bool known_field(enum api_kind kind, const char *key) {
    const char **list = kind == API_CHAT ? chat_fields : completion_fields;
    size_t n = kind == API_CHAT ? ARRAY_LEN(chat_fields) : ARRAY_LEN(completion_fields);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], key)) return true;
    return false;
}

/* The field's value, or NULL when absent or null (OpenAI treats null as "not given"). */
static json_t *field(const json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return v && !json_is_null(v) ? v : NULL;
}

static int get_number(const json_t *o, const char *key, double lo, double hi, float *out,
                      api_error *e) {
    json_t *v = field(o, key);
    if (!v) return 0;
    if (!json_is_number(v))
        return api_fail(e, 400, key, "invalid_type", "%s must be a number", key);
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi))
        return api_fail(e, 400, key, "invalid_value", "%s must be between %g and %g (got %g)", key,
                        lo, hi, x);
    *out = (float)x;
    return 1;
}

static int get_int(const json_t *o, const char *key, long long lo, long long hi, long long *out,
                   api_error *e) {
    json_t *v = field(o, key);
    if (!v) return 0;
    if (!json_is_integer(v))
        return api_fail(e, 400, key, "invalid_type", "%s must be an integer", key);
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return api_fail(e, 400, key, "invalid_value", "%s must be between %lld and %lld (got %lld)",
                        key, lo, hi, x);
    *out = x;
    return 1;
}

static int get_bool(const json_t *o, const char *key, bool *out, api_error *e) {
    json_t *v = field(o, key);
    if (!v) return 0;
    if (!json_is_boolean(v))
        return api_fail(e, 400, key, "invalid_type", "%s must be a boolean", key);
    *out = json_is_true(v);
    return 1;
}

/* Sampling fields, read from the deployment defaults first, then from the request. */
static int sampling_fields(api_request *r, const json_t *o, bool defaults, api_error *e) {
    sampler_params *p = &r->sampling;
    float f;
    long long i;
    int rc;
    const char *temp_key = defaults && field(o, "temp") ? "temp" : "temperature";
    if ((rc = get_number(o, temp_key, 0, 2, &f, e)) < 0) return -1;
    if (rc) p->temperature = f;
    if ((rc = get_number(o, "top_p", 0, 1, &f, e)) < 0) return -1;
    if (rc) p->top_p = f;
    if ((rc = get_int(o, "top_k", -1, 1 << 20, &i, e)) < 0) return -1;
    if (rc) p->top_k = i < 0 ? 0 : (int)i;
    if ((rc = get_number(o, "min_p", 0, 1, &f, e)) < 0) return -1;
    if (rc) p->min_p = f;
    if ((rc = get_number(o, "repetition_penalty", 1e-3, 100, &f, e)) < 0) return -1;
    if (rc) p->repetition_penalty = f;
    if ((rc = get_number(o, "presence_penalty", -2, 2, &f, e)) < 0) return -1;
    if (rc) p->presence_penalty = f;
    if ((rc = get_number(o, "frequency_penalty", -2, 2, &f, e)) < 0) return -1;
    if (rc) p->frequency_penalty = f;
    json_t *seed = field(o, "seed");
    if (seed) {
        if (!json_is_integer(seed))
            return api_fail(e, 400, "seed", "invalid_type", "seed must be an integer");
        p->seed = (uint64_t)json_integer_value(seed);
        r->seed_given = true;
    }
    const char *mt = r->kind == API_CHAT && field(o, "max_completion_tokens") && !defaults
                         ? "max_completion_tokens"
                         : "max_tokens";
    if ((rc = get_int(o, mt, 1, INT32_MAX, &i, e)) < 0) return -1;
    if (rc) {
        r->max_tokens = (int)i;
        r->max_tokens_given = !defaults;
    }
    return 0;
}

static int parse_stop(api_request *r, const json_t *o, api_error *e) {
    json_t *v = field(o, "stop");
    if (!v) return 0;
    if (json_is_string(v)) {
        if (json_string_length(v) == 0) return 0;
        r->stop = xmalloc(sizeof(char *));
        r->stop[r->n_stop++] = xstrdup(json_string_value(v));
        return 0;
    }
    if (!json_is_array(v))
        return api_fail(e, 400, "stop", "invalid_type",
                        "stop must be a string or an array of strings");
    if (json_array_size(v) > MAX_STOP)
        return api_fail(e, 400, "stop", "invalid_value", "stop holds at most %d strings", MAX_STOP);
    r->stop = xcalloc(MAX_STOP, sizeof(char *));
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s) {
        if (!json_is_string(s) || json_string_length(s) == 0)
            return api_fail(e, 400, "stop", "invalid_value", "stop[%zu] must be a non-empty string",
                            i);
        r->stop[r->n_stop++] = xstrdup(json_string_value(s));
    }
    return 0;
}

static int parse_logit_bias(api_request *r, const json_t *o, api_error *e) {
    json_t *v = field(o, "logit_bias");
    if (!v) return 0;
    if (!json_is_object(v))
        return api_fail(e, 400, "logit_bias", "invalid_type", "logit_bias must be an object");
    size_t n = json_object_size(v);
    if (n > 1024)
        return api_fail(e, 400, "logit_bias", "invalid_value",
                        "logit_bias has more than 1024 entries");
    r->bias_ids = xmalloc((n ? n : 1) * sizeof(int32_t));
    r->bias_values = xmalloc((n ? n : 1) * sizeof(float));
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        char *end;
        errno = 0;
        long id = strtol(key, &end, 10);
        if (errno || end == key || *end || id < 0 || id > INT32_MAX)
            return api_fail(e, 400, "logit_bias", "invalid_value",
                            "logit_bias key \"%.40s\" is not a token id", key);
        if (!json_is_number(val) || fabs(json_number_value(val)) > 100)
            return api_fail(e, 400, "logit_bias", "invalid_value",
                            "logit_bias[%s] must be a number between -100 and 100", key);
        r->bias_ids[r->n_bias] = (int32_t)id;
        r->bias_values[r->n_bias++] = (float)json_number_value(val);
    }
    return 0;
}

/* A message's content as the template sees it: text parts are joined into one string. */
static int normalize_content(json_t *msg, size_t i, api_error *e) {
    json_t *c = json_object_get(msg, "content");
    char param[96];
    snprintf(param, sizeof param, "messages[%zu].content", i);
    if (!c || json_is_null(c) || json_is_string(c)) return 0;
    if (!json_is_array(c))
        return api_fail(e, 400, param, "invalid_type", "%s must be a string or an array of parts",
                        param);
    strbuf text = {0};
    size_t j;
    json_t *part;
    json_array_foreach(c, j, part) {
        const char *type =
            json_is_object(part) ? json_string_value(json_object_get(part, "type")) : NULL;
        if (!type || strcmp(type, "text")) {
            sb_free(&text);
            snprintf(param, sizeof param, "messages[%zu].content[%zu].type", i, j);
            return api_fail(e, 400, param, "unsupported_content",
                            "content part type \"%s\" is not supported (only \"text\")",
                            type ? type : "(missing)");
        }
        json_t *t = json_object_get(part, "text");
        if (!json_is_string(t)) {
            sb_free(&text);
            snprintf(param, sizeof param, "messages[%zu].content[%zu].text", i, j);
            return api_fail(e, 400, param, "invalid_type", "%s must be a string", param);
        }
        sb_append(&text, json_string_value(t), json_string_length(t));
    }
    json_object_set_new(msg, "content", json_stringn(text.data ? text.data : "", text.len));
    sb_free(&text);
    return 0;
}

static int parse_messages(api_request *r, api_error *e) {
    json_t *v = field(r->body, "messages");
    if (!v)
        return api_fail(e, 400, "messages", "missing_required_parameter", "messages is required");
    if (!json_is_array(v) || json_array_size(v) == 0)
        return api_fail(e, 400, "messages", "invalid_value", "messages must be a non-empty array");
    static const char *roles[] = {"system", "developer", "user", "assistant", "tool"};
    size_t i;
    json_t *msg;
    json_array_foreach(v, i, msg) {
        char param[96];
        snprintf(param, sizeof param, "messages[%zu]", i);
        if (!json_is_object(msg))
            return api_fail(e, 400, param, "invalid_type", "%s must be an object", param);
        const char *role = json_string_value(json_object_get(msg, "role"));
        bool ok = false;
        for (size_t k = 0; role && k < ARRAY_LEN(roles); k++) ok |= !strcmp(role, roles[k]);
        snprintf(param, sizeof param, "messages[%zu].role", i);
        if (!ok)
            return api_fail(e, 400, param, "invalid_value",
                            "%s must be one of system, developer, user, assistant, tool", param);
        json_t *c = json_object_get(msg, "content");
        bool has_calls = json_is_array(json_object_get(msg, "tool_calls"));
        if ((!c || json_is_null(c)) && !(strcmp(role, "assistant") == 0)) {
            snprintf(param, sizeof param, "messages[%zu].content", i);
            return api_fail(e, 400, param, "missing_required_parameter", "%s is required", param);
        }
        json_t *calls = json_object_get(msg, "tool_calls");
        if (calls && !json_is_null(calls) && !has_calls) {
            snprintf(param, sizeof param, "messages[%zu].tool_calls", i);
            return api_fail(e, 400, param, "invalid_type", "%s must be an array", param);
        }
        if (normalize_content(msg, i, e) < 0) return -1;
    }
    r->messages = v;
    return 0;
}

static int parse_tools(api_request *r, api_error *e) {
    json_t *choice = field(r->body, "tool_choice");
    if (choice) {
        const char *s = json_string_value(choice);
        if (!s)
            return api_fail(
                e, 400, "tool_choice", "unsupported_value",
                "tool_choice naming a function is not supported (use \"auto\" or \"none\")");
        if (!strcmp(s, "required"))
            return api_fail(e, 400, "tool_choice", "unsupported_value",
                            "tool_choice \"required\" is not supported (use \"auto\" or \"none\")");
        if (strcmp(s, "auto") && strcmp(s, "none"))
            return api_fail(e, 400, "tool_choice", "invalid_value",
                            "tool_choice must be \"auto\", \"none\", \"required\" or an object");
    }
    json_t *tools = field(r->body, "tools");
    if (!tools) return 0;
    if (!json_is_array(tools) || json_array_size(tools) > MAX_TOOLS)
        return api_fail(e, 400, "tools", "invalid_type",
                        "tools must be an array of at most %d tools", MAX_TOOLS);
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        char param[96];
        const char *type = json_string_value(json_object_get(t, "type"));
        snprintf(param, sizeof param, "tools[%zu].type", i);
        if (!json_is_object(t) || !type || strcmp(type, "function"))
            return api_fail(e, 400, param, "invalid_value", "%s must be \"function\"", param);
        json_t *fn = json_object_get(t, "function");
        const char *name = json_string_value(json_object_get(fn, "name"));
        snprintf(param, sizeof param, "tools[%zu].function.name", i);
        if (!json_is_object(fn) || !name || !*name)
            return api_fail(e, 400, param, "missing_required_parameter", "%s is required", param);
        json_t *params = json_object_get(fn, "parameters");
        snprintf(param, sizeof param, "tools[%zu].function.parameters", i);
        if (params && !json_is_object(params))
            return api_fail(e, 400, param, "invalid_type", "%s must be an object", param);
    }
    if (json_array_size(tools) > 0 && !(choice && !strcmp(json_string_value(choice), "none")))
        r->tools = tools;
    return 0;
}

static int add_prompt(api_request *r, const json_t *p, size_t i, api_error *e) {
    int k = r->n_prompts;
    if (k >= MAX_PROMPTS)
        return api_fail(e, 400, "prompt", "invalid_value", "at most %d prompts per request",
                        MAX_PROMPTS);
    if (json_is_string(p)) {
        r->prompts[k] = xstrdup(json_string_value(p));
    } else if (json_is_array(p) && json_array_size(p) > 0) {
        size_t n = json_array_size(p), j;
        json_t *id;
        r->prompt_ids[k] = xmalloc(n * sizeof(int32_t));
        r->n_prompt_ids[k] = (int)n;
        json_array_foreach(p, j, id) {
            if (!json_is_integer(id) || json_integer_value(id) < 0 ||
                json_integer_value(id) > INT32_MAX) {
                free(r->prompt_ids[k]);
                r->prompt_ids[k] = NULL;
                return api_fail(e, 400, "prompt", "invalid_value",
                                "prompt[%zu] must be a string or a list of token ids", i);
            }
            r->prompt_ids[k][j] = (int32_t)json_integer_value(id);
        }
    } else {
        return api_fail(e, 400, "prompt", "invalid_type",
                        "prompt must be a string, a list of strings or a list of token ids");
    }
    r->n_prompts++;
    return 0;
}

static int parse_prompt(api_request *r, api_error *e) {
    json_t *p = field(r->body, "prompt");
    if (!p) return api_fail(e, 400, "prompt", "missing_required_parameter", "prompt is required");
    r->prompts = xcalloc(MAX_PROMPTS, sizeof(char *));
    r->prompt_ids = xcalloc(MAX_PROMPTS, sizeof(int32_t *));
    r->n_prompt_ids = xcalloc(MAX_PROMPTS, sizeof(int));
    if (json_is_string(p)) return add_prompt(r, p, 0, e);
    if (!json_is_array(p) || json_array_size(p) == 0)
        return api_fail(e, 400, "prompt", "invalid_type",
                        "prompt must be a string, a list of strings or a list of token ids");
    if (json_is_integer(json_array_get(p, 0))) return add_prompt(r, p, 0, e);
    size_t i;
    json_t *one;
    json_array_foreach(p, i, one) if (add_prompt(r, one, i, e) < 0) return -1;
    return 0;
}

/* Fields that are accepted only with their neutral value. */
static int neutral_fields(api_request *r, api_error *e) {
    json_t *v;
    if ((v = field(r->body, "response_format"))) {
        const char *type = json_string_value(json_object_get(v, "type"));
        if (!json_is_object(v) || !type || strcmp(type, "text"))
            return api_fail(e, 400, "response_format", "unsupported_value",
                            "response_format \"%s\" is not supported (only \"text\")",
                            type ? type : "?");
    }
    if ((v = field(r->body, "echo")) && !json_is_false(v))
        return api_fail(e, 400, "echo", "unsupported_value", "echo is not supported");
    if ((v = field(r->body, "suffix")) && !(json_is_string(v) && json_string_length(v) == 0))
        return api_fail(e, 400, "suffix", "unsupported_value", "suffix is not supported");
    if ((v = field(r->body, "best_of")) && !(json_is_integer(v) && json_integer_value(v) == r->n))
        return api_fail(e, 400, "best_of", "unsupported_value",
                        "best_of other than n is not supported");
    if ((v = field(r->body, "parallel_tool_calls")) && !json_is_boolean(v))
        return api_fail(e, 400, "parallel_tool_calls", "invalid_type",
                        "parallel_tool_calls must be a boolean");
    if ((v = field(r->body, "user")) && !json_is_string(v))
        return api_fail(e, 400, "user", "invalid_type", "user must be a string");
    if ((v = field(r->body, "chat_template_kwargs"))) {
        if (!json_is_object(v))
            return api_fail(e, 400, "chat_template_kwargs", "invalid_type",
                            "chat_template_kwargs must be an object");
        r->template_kwargs = v;
    }
    return 0;
}

static int parse_streaming(api_request *r, api_error *e) {
    long long n = 1;
    if (get_int(r->body, "n", 1, 1 << 20, &n, e) < 0) return -1;
    r->n = (int)n;
    if (get_bool(r->body, "stream", &r->stream, e) < 0) return -1;
    json_t *so = field(r->body, "stream_options");
    if (so) {
        if (!r->stream)
            return api_fail(e, 400, "stream_options", "invalid_value",
                            "stream_options is only allowed when stream is true");
        if (!json_is_object(so))
            return api_fail(e, 400, "stream_options", "invalid_type",
                            "stream_options must be an object");
        json_t *iu = json_object_get(so, "include_usage");
        if (iu && !json_is_boolean(iu))
            return api_fail(e, 400, "stream_options.include_usage", "invalid_type",
                            "stream_options.include_usage must be a boolean");
        r->include_usage = json_is_true(iu);
    }
    long long top = 0;
    if (r->kind == API_CHAT) {
        if (get_bool(r->body, "logprobs", &r->logprobs, e) < 0) return -1;
        int rc = get_int(r->body, "top_logprobs", 0, 20, &top, e);
        if (rc < 0) return -1;
        if (rc && !r->logprobs)
            return api_fail(e, 400, "top_logprobs", "invalid_value",
                            "top_logprobs requires logprobs to be true");
    } else {
        int rc = get_int(r->body, "logprobs", 0, 5, &top, e);
        if (rc < 0) return -1;
        r->logprobs = rc == 1;
    }
    r->top_logprobs = (int)top;
    return 0;
}

int api_request_parse(api_request *r, enum api_kind kind, const char *body, size_t len,
                      const json_t *defaults, const char *model_id, int max_n, api_error *e) {
    *r = (api_request){.kind = kind};
    sampler_params_default(&r->sampling);
    json_error_t je;
    r->body = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!r->body)
        return api_fail(e, 400, NULL, "invalid_json",
                        "the body is not valid JSON: %s (line %d, column %d)", je.text, je.line,
                        je.column);
    if (!json_is_object(r->body))
        return api_fail(e, 400, NULL, "invalid_json", "the body must be a JSON object");
    const char *key;
    json_t *val;
    json_object_foreach(r->body, key, val) if (!known_field(kind, key)) return api_fail(
        e, 400, key, "unsupported_parameter", "unsupported parameter: \"%.60s\"", key);
    json_t *model_v = field(r->body, "model");
    if (model_v && !json_is_string(model_v))
        return api_fail(e, 400, "model", "invalid_type", "model must be a string");
    if (model_v && strcmp(json_string_value(model_v), model_id))
        return api_fail(e, 404, "model", "model_not_found",
                        "the model \"%.100s\" does not exist (this server has \"%s\")",
                        json_string_value(model_v), model_id);
    if (defaults && sampling_fields(r, defaults, true, e) < 0) {
        snprintf(e->message + strlen(e->message), sizeof e->message - strlen(e->message),
                 " (in the deployment's parameters)");
        e->status = 500;
        return -1;
    }
    if (sampling_fields(r, r->body, false, e) < 0) return -1;
    if (kind == API_CHAT) {
        if (parse_messages(r, e) < 0 || parse_tools(r, e) < 0) return -1;
    } else if (parse_prompt(r, e) < 0) {
        return -1;
    }
    if (parse_stop(r, r->body, e) < 0 || parse_logit_bias(r, r->body, e) < 0 ||
        parse_streaming(r, e) < 0 || neutral_fields(r, e) < 0)
        return -1;
    if (r->n > max_n)
        return api_fail(e, 400, "n", "invalid_value", "n must be between 1 and %d (got %d)", max_n,
                        r->n);
    if (r->n * (kind == API_COMPLETIONS ? r->n_prompts : 1) > max_n * 4)
        return api_fail(e, 400, "n", "invalid_value", "too many choices (n times prompts)");
    return 0;
}

void api_request_free(api_request *r) {
    json_decref(r->body);
    for (int i = 0; i < r->n_prompts; i++) {
        free(r->prompts[i]);
        free(r->prompt_ids[i]);
    }
    free(r->prompts);
    free(r->prompt_ids);
    free(r->n_prompt_ids);
    free(r->bias_ids);
    free(r->bias_values);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    free(r->stop);
    *r = (api_request){0};
}

int server_check_defaults(const json_t *defaults) {
    api_request r;
    api_error e;
    static const char probe[] = "{\"prompt\": \"x\"}";
    int rc = api_request_parse(&r, API_COMPLETIONS, probe, sizeof probe - 1, defaults, "m", 1, &e);
    api_request_free(&r);
    if (rc < 0) kiln_error("parameters: %s", e.message);
    return rc;
}
