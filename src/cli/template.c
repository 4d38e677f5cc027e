/*
 * template.c — `kiln template MODEL --messages F [--tools F] [--no-generation-prompt]
 * [--kwargs JSON] [--chat-template FILE]`: prints the prompt exactly as transformers'
 * apply_chat_template(messages, tools=..., tokenize=False, add_generation_prompt=...,
 * **kwargs) returns it, byte for byte, with no newline added.
 * A hidden `kiln template --batch CASES.json` renders many cases in one process for the
 * tests: CASES is a list of {"model", "chat_template" (a file) or "template_source", "messages",
 * "tools", "add_generation_prompt", "kwargs"}; it prints a JSON list of {"text"} or {"error"}.
 */
#include "cli/cli.h"
#include "text/text.h"

#include <stdio.h>
#include <string.h>

static const char usage_text[] =
    "kiln template MODEL --messages F [--tools F] [--no-generation-prompt] [--kwargs JSON] "
    "[--chat-template FILE]";

/* A messages file holds a list of messages, or {"messages": [...], "tools": [...]}. */
static int load_messages(const char *path, json_t **messages, json_t **tools) {
    json_t *root = json_load_path(path);
    if (!root) return -1;
    if (json_is_object(root)) {
        json_t *m = json_object_get(root, "messages");
        json_t *t = json_object_get(root, "tools");
        if (!json_is_array(m)) {
            kiln_error("%s: expected a list of messages or {\"messages\": [...]}", path);
            json_decref(root);
            return -1;
        }
        *messages = json_incref(m);
        if (t && !json_is_null(t) && !*tools) *tools = json_incref(t);
        json_decref(root);
        return 0;
    }
    if (!json_is_array(root)) {
        kiln_error("%s: expected a list of messages", path);
        json_decref(root);
        return -1;
    }
    *messages = root;
    return 0;
}

static int run_batch(const char *path) {
    json_t *cases = json_load_path(path);
    if (!cases) return cli_fail();
    if (!json_is_array(cases)) {
        json_decref(cases);
        kiln_error("%s: expected a list of cases", path);
        return cli_fail();
    }
    json_t *results = json_array();
    /* templates are parsed once per (model, chat_template) pair */
    json_t *cache_keys = json_array();
    chat_template *cache[64] = {0};
    for (size_t i = 0; i < json_array_size(cases); i++) {
        json_t *cs = json_array_get(cases, i);
        const char *model = json_string_value(json_object_get(cs, "model"));
        const char *file = json_string_value(json_object_get(cs, "chat_template"));
        const char *source = json_string_value(json_object_get(cs, "template_source"));
        char *key =
            xasprintf("%s\n%s\n%s", model ? model : "", file ? file : "", source ? source : "");
        chat_template *ct = NULL;
        size_t k;
        for (k = 0; k < json_array_size(cache_keys); k++)
            if (!strcmp(json_string_value(json_array_get(cache_keys, k)), key)) break;
        if (k < json_array_size(cache_keys))
            ct = cache[k];
        else {
            ct = source ? chat_template_parse(source, model) : chat_template_load(model, file);
            if (k < ARRAY_LEN(cache)) {
                cache[k] = ct;
                json_array_append_new(cache_keys, json_string(key));
            }
        }
        free(key);
        char *text = NULL;
        if (ct) {
            json_t *tools = json_object_get(cs, "tools");
            json_t *agp = json_object_get(cs, "add_generation_prompt");
            text = chat_template_render(
                ct, json_object_get(cs, "messages"), json_is_null(tools) ? NULL : tools,
                agp ? json_is_true(agp) : true, json_object_get(cs, "kwargs"));
        }
        json_t *r = text ? json_pack("{s:s}", "text", text)
                         : json_pack("{s:s}", "error", kiln_last_error());
        if (!r) r = json_pack("{s:s}", "error", "result is not valid UTF-8");
        json_array_append_new(results, r);
        free(text);
        if (ct && k >= ARRAY_LEN(cache)) chat_template_free(ct);
    }
    for (size_t k = 0; k < ARRAY_LEN(cache); k++) chat_template_free(cache[k]);
    json_decref(cache_keys);
    json_dumpf(results, stdout, JSON_INDENT(1) | JSON_ENSURE_ASCII);
    json_decref(results);
    json_decref(cases);
    return 0;
}

int cmd_template(int argc, char **argv) {
    const char *model = NULL, *messages_path = NULL, *tools_path = NULL, *kwargs_text = NULL;
    const char *template_path = NULL;
    bool generation_prompt = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: %s\n", usage_text);
            return 0;
        } else if (!strcmp(a, "--batch") && has_value)
            return run_batch(argv[i + 1]);
        else if (!strcmp(a, "--messages") && has_value)
            messages_path = argv[++i];
        else if (!strcmp(a, "--tools") && has_value)
            tools_path = argv[++i];
        else if (!strcmp(a, "--kwargs") && has_value)
            kwargs_text = argv[++i];
        else if (!strcmp(a, "--chat-template") && has_value)
            template_path = argv[++i];
        else if (!strcmp(a, "--no-generation-prompt"))
            generation_prompt = false;
        else if (a[0] == '-' || model)
            return cli_usage(usage_text);
        else
            model = a;
    }
    if (!model || !messages_path) return cli_usage(usage_text);

    json_t *messages = NULL, *tools = NULL, *kwargs = NULL;
    chat_template *ct = NULL;
    char *text = NULL;
    int rc = 1;
    if (tools_path && !(tools = json_load_path(tools_path))) goto done;
    if (load_messages(messages_path, &messages, &tools) < 0) goto done;
    if (kwargs_text) {
        json_error_t err;
        kwargs = json_loads(kwargs_text, 0, &err);
        if (!kwargs || !json_is_object(kwargs)) {
            kiln_error("--kwargs must be a JSON object: %s", kwargs ? "not an object" : err.text);
            goto done;
        }
    }
    if (!(ct = chat_template_load(model, template_path))) goto done;
    if (!(text = chat_template_render(ct, messages, tools, generation_prompt, kwargs))) goto done;
    fwrite(text, 1, strlen(text), stdout);
    rc = fflush(stdout) == 0 ? 0 : 1;
done:
    free(text);
    chat_template_free(ct);
    json_decref(messages);
    json_decref(tools);
    json_decref(kwargs);
    return rc ? cli_fail() : 0;
}
