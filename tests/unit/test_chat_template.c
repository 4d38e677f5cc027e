/*
 * test_chat_template.c — the Jinja interpreter under attack: unclosed tags, runaway recursion,
 * huge ranges and loops, deep nesting, oversized output and memory; every one must end in a
 * one-line error naming the template line, never a crash or a hang. Also loading a template
 * from a model folder (string, named list, chat_template.jinja), and error lines.
 * (Rendering correctness is checked against Jinja2 in tests/integration/test_chat_templates.sh.)
 */
#include "check.h"
#include "text/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static json_t *one_message(void) {
    return json_pack("[{s:s,s:s}]", "role", "user", "content", "hi");
}

/* Renders SRC; returns the output or NULL (the error is in kiln_last_error()). */
static char *render(const char *src) {
    chat_template *ct = chat_template_parse(src, NULL);
    if (!ct) return NULL;
    json_t *m = one_message();
    char *out = chat_template_render(ct, m, NULL, true, NULL);
    json_decref(m);
    chat_template_free(ct);
    return out;
}

/* The template must fail with an error that contains FRAGMENT and is one line. */
static void expect_error(const char *src, const char *fragment) {
    char *out = render(src);
    CHECK_MSG(out == NULL, "expected an error for %.60s, got output", src);
    free(out);
    CHECK_CONTAINS(kiln_last_error(), fragment);
    CHECK(strchr(kiln_last_error(), '\n') == NULL);
}

static void test_renders_basic(void) {
    char *out = render("{% for m in messages %}{{ m.role }}:{{ m.content }}{% endfor %}"
                       "{{ add_generation_prompt }}");
    CHECK_STR(out, "user:hiTrue");
    free(out);
}

static void test_unclosed_tags(void) {
    expect_error("{% if true %}never closed", "line 1");
    expect_error("{% for x in messages %}\n\nno end", "expected 'endfor'");
    expect_error("hello {{ messages", "not closed");
    expect_error("a\nb\n{# comment without end", "line 3: missing end of comment");
    expect_error("{% raw %}raw forever", "missing end of raw");
    expect_error("{% macro m() %}body", "expected 'endmacro'");
    expect_error("{% set x %}body", "expected 'endset'");
    expect_error("{{ 'unterminated }}", "unexpected end of string");
    expect_error("{{ (1 + 2 }}", "expected ')'");
    expect_error("{% endfor %}", "unknown tag 'endfor'");
    expect_error("{% if %}{% endif %}", "expected an expression");
    expect_error("{{ x | }}", "expected a filter or test name");
}

static void test_runaway_recursion(void) {
    expect_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}\n{{ f(0) }}",
                 "maximum recursion depth exceeded");
    expect_error("{% macro a() %}{{ b() }}{% endmacro %}{% macro b() %}{{ a() }}{% endmacro %}"
                 "{{ a() }}",
                 "recursion");
}

static void test_huge_range_and_loops(void) {
    expect_error("{% for i in range(1000000000) %}x{% endfor %}", "Range too big");
    expect_error("{{ range(0, 10, 0) }}", "must not be zero");
    expect_error("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
                 "{% endfor %}",
                 "ran too long");
}

static void test_output_and_memory_limits(void) {
    expect_error("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "limit");
    expect_error("{{ 'a' * 100000000 }}", "larger than the limit");
    expect_error("{% set ns = namespace(s='x') %}{% for i in range(64) %}"
                 "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                 "limit");
    expect_error("{% set ns = namespace(l=[1]) %}{% for i in range(64) %}"
                 "{% set ns.l = ns.l + ns.l %}{% endfor %}",
                 "limit");
}

static char *repeat(const char *open, const char *mid, const char *close, int n) {
    size_t lo = strlen(open), lm = strlen(mid), lc = strlen(close);
    char *s = malloc(n * (lo + lc) + lm + 1);
    char *p = s;
    for (int i = 0; i < n; i++, p += lo) memcpy(p, open, lo);
    memcpy(p, mid, lm);
    p += lm;
    for (int i = 0; i < n; i++, p += lc) memcpy(p, close, lc);
    *p = 0;
    return s;
}

static void test_deep_nesting(void) {
    char *parens = repeat("(", "1", ")", 100000);
    char *src = malloc(strlen(parens) + 8);
    sprintf(src, "{{ %s }}", parens);
    expect_error(src, "nested too deeply");
    free(src);
    free(parens);

    char *ifs = repeat("{% if true %}", "x", "{% endif %}", 5000);
    expect_error(ifs, "nested too deeply");
    free(ifs);

    char *lists = repeat("[", "", "]", 50000);
    src = malloc(strlen(lists) + 8);
    sprintf(src, "{{ %s }}", lists);
    expect_error(src, "too deeply");
    free(src);
    free(lists);

    /* moderate nesting is fine */
    char *ok = repeat("{% if true %}", "deep", "{% endif %}", 50);
    char *out = render(ok);
    CHECK_STR(out, "deep");
    free(out);
    free(ok);
}

static void test_raise_exception_lines(void) {
    expect_error("line one\n{% if true %}\n  {{ raise_exception('Roles must alternate') }}\n"
                 "{% endif %}",
                 "chat template error at line 3: Roles must alternate");
    expect_error("{{ raise_exception('two\nlines') }}", "two lines");
    expect_error("\n\n{{ no_such_function() }}", "line 3: 'no_such_function' is undefined");
    expect_error("{{ 1 }}\n{{ 'a' + 1 }}", "line 2: can only concatenate str");
    expect_error("{% set x = 1 %}\n\n\n{{ x.y.z }}", "line 4");
    expect_error("{{ messages.append(1) }}", "unsafe");
    expect_error("ok\n\xff{{ 1 }}", "not valid UTF-8 text (byte 3)");
    expect_error("{{ '\xed\xa0\x80' }}", "not valid UTF-8");
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_load_from_model_folder(void) {
    char dir[] = "/tmp/kiln-ct-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *cfg = path_join(dir, "tokenizer_config.json");
    char *jinja = path_join(dir, "chat_template.jinja");
    json_t *m = one_message();
    json_t *tools = json_pack("[{s:s}]", "name", "t");

    /* named templates: "tool_use" when tools are given; tokens may be AddedToken objects */
    write_text(cfg,
               "{\"bos_token\": {\"content\": \"<s>\", \"lstrip\": false},"
               " \"eos_token\": \"</s>\", \"model_max_length\": 1000000000000000019884624838656,"
               " \"chat_template\": [{\"name\": \"default\", \"template\": \"D{{ bos_token }}\"},"
               " {\"name\": \"tool_use\", \"template\": \"T{{ tools|length }}{{ eos_token }}\"}]}");
    chat_template *ct = chat_template_load(dir, NULL);
    CHECK(ct != NULL);
    if (ct) {
        char *a = chat_template_render(ct, m, NULL, true, NULL);
        char *b = chat_template_render(ct, m, tools, true, NULL);
        CHECK_STR(a, "D<s>");
        CHECK_STR(b, "T1</s>");
        free(a);
        free(b);
        chat_template_free(ct);
    }
    /* chat_template.jinja wins over the config; its trailing newline is dropped (Jinja2) */
    write_text(jinja, "J{{ kw }}\n");
    ct = chat_template_load(dir, NULL);
    CHECK(ct != NULL);
    if (ct) {
        json_t *kw = json_pack("{s:s}", "kw", "!");
        char *a = chat_template_render(ct, m, NULL, false, kw);
        CHECK_STR(a, "J!");
        free(a);
        json_decref(kw);
        chat_template_free(ct);
    }
    unlink(jinja);
    /* no template at all */
    write_text(cfg, "{\"eos_token\": \"</s>\"}");
    ct = chat_template_load(dir, NULL);
    CHECK(ct == NULL);
    CHECK_CONTAINS(kiln_last_error(), "no chat template");
    /* a syntax error names the file and line */
    write_text(cfg, "{\"chat_template\": \"ok\\n{% if %}\"}");
    ct = chat_template_load(dir, NULL);
    CHECK(ct == NULL);
    CHECK_CONTAINS(kiln_last_error(), "tokenizer_config.json");
    CHECK_CONTAINS(kiln_last_error(), "line 2");
    unlink(cfg);
    rmdir(dir);
    free(cfg);
    free(jinja);
    json_decref(m);
    json_decref(tools);
}

int main(void) {
    RUN(test_renders_basic);
    RUN(test_unclosed_tags);
    RUN(test_runaway_recursion);
    RUN(test_huge_range_and_loops);
    RUN(test_output_and_memory_limits);
    RUN(test_deep_nesting);
    RUN(test_raise_exception_lines);
    RUN(test_load_from_model_folder);
    return CHECK_DONE();
}
