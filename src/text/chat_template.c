/*
 * chat_template.c — a model's chat template, found and rendered the way transformers'
 * apply_chat_template(..., tokenize=False) does it: the template comes from --chat-template,
 * else chat_template.jinja beside the tokenizer (it wins over the config), else
 * tokenizer_config.json's "chat_template" (a string, or named templates where "tool_use" is
 * taken when tools are given). Variables: messages, tools, documents, add_generation_prompt,
 * the special tokens of tokenizer_config.json (bos_token, eos_token, ...) and any kwargs.
 */
#include "text/jinja_impl.h"
#include "text/text.h"

#include <string.h>

struct chat_template {
    jinja_template *dflt;     /* NULL when a named list has no "default" */
    jinja_template *tool_use; /* NULL unless the list names one */
    json_t *tokens;           /* special tokens as template variables */
    char *origin;             /* where the template came from, for messages */
};

void chat_template_free(chat_template *ct) {
    if (!ct) return;
    jinja_free(ct->dflt);
    jinja_free(ct->tool_use);
    json_decref(ct->tokens);
    free(ct->origin);
    free(ct);
}

static jinja_template *parse_named(const char *src, const char *origin) {
    jinja_template *t = jinja_parse(src, strlen(src));
    if (!t) kiln_error_prefix("%s: ", origin);
    return t;
}

/* special tokens: strings, or AddedToken objects {"content": ...} */
static json_t *special_tokens(const json_t *cfg) {
    static const char *const names[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                        "pad_token", "cls_token", "mask_token"};
    json_t *out = json_object();
    if (!cfg) return out;
    for (size_t i = 0; i < ARRAY_LEN(names); i++) {
        json_t *v = json_object_get(cfg, names[i]);
        if (json_is_object(v)) v = json_object_get(v, "content");
        if (json_is_string(v)) json_object_set(out, names[i], v);
    }
    json_t *extra = json_object_get(cfg, "additional_special_tokens");
    if (json_is_array(extra)) {
        json_t *list = json_array();
        for (size_t i = 0; i < json_array_size(extra); i++) {
            json_t *v = json_array_get(extra, i);
            if (json_is_object(v)) v = json_object_get(v, "content");
            if (json_is_string(v)) json_array_append(list, v);
        }
        json_object_set_new(out, "additional_special_tokens", list);
    }
    return out;
}

static int load_from_config(chat_template *ct, const json_t *tpl, const char *origin) {
    if (json_is_string(tpl)) {
        ct->dflt = parse_named(json_string_value(tpl), origin);
        return ct->dflt ? 0 : -1;
    }
    if (!json_is_array(tpl)) {
        kiln_error("%s: \"chat_template\" must be a string or a list of {\"name\", \"template\"}",
                   origin);
        return -1;
    }
    for (size_t i = 0; i < json_array_size(tpl); i++) {
        json_t *item = json_array_get(tpl, i);
        const char *name = json_string_value(json_object_get(item, "name"));
        const char *src = json_string_value(json_object_get(item, "template"));
        if (!name || !src) {
            kiln_error("%s: chat_template[%zu] needs \"name\" and \"template\" strings", origin, i);
            return -1;
        }
        jinja_template **slot = !strcmp(name, "default")    ? &ct->dflt
                                : !strcmp(name, "tool_use") ? &ct->tool_use
                                                            : NULL;
        if (!slot) continue;
        char *where = xasprintf("%s (template \"%s\")", origin, name);
        *slot = parse_named(src, where);
        free(where);
        if (!*slot) return -1;
    }
    if (!ct->dflt && !ct->tool_use) {
        kiln_error("%s: chat_template lists no \"default\" or \"tool_use\" template", origin);
        return -1;
    }
    return 0;
}

chat_template *chat_template_load(const char *model_dir, const char *override_path) {
    chat_template *ct = xcalloc(1, sizeof(*ct));
    json_t *cfg = NULL;
    char *cfg_path = NULL, *jinja_path = NULL;
    if (model_dir && !path_exists(model_dir)) {
        kiln_error("%s: no such model folder", model_dir);
        goto fail;
    }
    if (model_dir && is_directory(model_dir)) {
        cfg_path = path_join(model_dir, "tokenizer_config.json");
        jinja_path = path_join(model_dir, "chat_template.jinja");
        if (path_exists(cfg_path)) {
            /* model_max_length is often 1e30 written as an integer: read integers as reals */
            json_error_t err;
            cfg = json_load_file(cfg_path, JSON_DECODE_INT_AS_REAL, &err);
            if (!cfg) {
                kiln_error("%s:%d:%d: %s", cfg_path, err.line, err.column, err.text);
                goto fail;
            }
        }
    }
    ct->tokens = special_tokens(cfg);
    const char *file = override_path                           ? override_path
                       : jinja_path && path_exists(jinja_path) ? jinja_path
                                                               : NULL;
    if (file) {
        char *src;
        size_t len;
        if (read_file(file, &src, &len) < 0) goto fail;
        ct->origin = xstrdup(file);
        ct->dflt = jinja_parse(src, len);
        free(src);
        if (!ct->dflt) {
            kiln_error_prefix("%s: ", file);
            goto fail;
        }
    } else {
        json_t *tpl = json_object_get(cfg, "chat_template");
        if (!tpl || json_is_null(tpl)) {
            kiln_error("%s has no chat template (no \"chat_template\" in tokenizer_config.json "
                       "and no chat_template.jinja); pass --chat-template FILE",
                       model_dir ? model_dir : "the model");
            goto fail;
        }
        ct->origin = xstrdup(cfg_path);
        if (load_from_config(ct, tpl, cfg_path) < 0) goto fail;
    }
    json_decref(cfg);
    free(cfg_path);
    free(jinja_path);
    return ct;
fail:
    json_decref(cfg);
    free(cfg_path);
    free(jinja_path);
    chat_template_free(ct);
    return NULL;
}

chat_template *chat_template_parse(const char *source, const char *model_dir) {
    chat_template *ct = xcalloc(1, sizeof(*ct));
    json_t *cfg = NULL;
    if (model_dir && is_directory(model_dir)) {
        char *cfg_path = path_join(model_dir, "tokenizer_config.json");
        json_error_t err;
        if (path_exists(cfg_path)) cfg = json_load_file(cfg_path, JSON_DECODE_INT_AS_REAL, &err);
        free(cfg_path);
    }
    ct->tokens = special_tokens(cfg);
    json_decref(cfg);
    ct->origin = xstrdup("chat template");
    if (!(ct->dflt = jinja_parse(source, strlen(source)))) {
        chat_template_free(ct);
        return NULL;
    }
    return ct;
}

char *chat_template_render(const chat_template *ct, const json_t *messages, const json_t *tools,
                           bool add_generation_prompt, const json_t *kwargs) {
    bool have_tools = tools && !json_is_null(tools);
    const jinja_template *t = have_tools && ct->tool_use ? ct->tool_use : ct->dflt;
    if (!t) {
        kiln_error("%s: no \"default\" chat template (only \"tool_use\", and no tools given)",
                   ct->origin);
        return NULL;
    }
    json_t *vars = json_deep_copy(ct->tokens);
    json_object_set(vars, "messages", (json_t *)messages);
    json_object_set_new(vars, "tools", have_tools ? json_incref((json_t *)tools) : json_null());
    json_object_set_new(vars, "documents", json_null());
    json_object_set_new(vars, "add_generation_prompt", json_boolean(add_generation_prompt));
    if (kwargs && json_is_object(kwargs)) json_object_update(vars, (json_t *)kwargs);
    char *out = jinja_render(t, vars, NULL);
    json_decref(vars);
    return out;
}
