/*
 * test_tokenizer.c — the tokenizer under hostile input: invalid UTF-8, malformed and
 * unsupported tokenizer.json files, truncated llama2.c files, huge inputs, and the streaming
 * detokenizer's handling of UTF-8 split across tokens. (Correctness against the reference
 * tokenizers lives in tests/integration/test_tokenizer.sh.)
 */
#include "check.h"
#include "text/text.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/kiln-test-tok-XXXXXX";

/* Writes a model folder holding tokenizer.json = json; returns its path (static buffer). */
static const char *model_with(const char *json) {
    static char dir[256];
    static int n;
    snprintf(dir, sizeof dir, "%s/m%d", tmpdir, n++);
    mkdir(dir, 0755);
    char *path = path_join(dir, "tokenizer.json");
    write_file_atomic(path, json, strlen(json));
    free(path);
    return dir;
}

static void expect_load_error(const char *json, const char *fragment) {
    tokenizer *t = tokenizer_load(model_with(json));
    CHECK_MSG(t == NULL, "loaded although it should fail with \"%s\"", fragment);
    if (t)
        tokenizer_free(t);
    else
        CHECK_CONTAINS(kiln_last_error(), fragment);
}

/* A byte-level BPE over GPT-2's byte alphabet with a few merges ("ab", "abc", "Ġa"). */
static char *byte_level_json(void) {
    char *vocab = xstrdup("");
    for (int b = 0, extra = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        int cp = printable ? b : 256 + extra++;
        char ch[8] = {0};
        if (cp < 0x80) {
            ch[0] = (char)cp;
        } else {
            ch[0] = (char)(0xC0 | (cp >> 6));
            ch[1] = (char)(0x80 | (cp & 0x3F));
        }
        const char *esc = ch[0] == '"' ? "\\\"" : ch[0] == '\\' ? "\\\\" : ch;
        char *next = xasprintf("%s\"%s\": %d, ", vocab, esc, b);
        free(vocab);
        vocab = next;
    }
    char *json =
        xasprintf("{\"model\": {\"type\": \"BPE\", \"vocab\": {%s\"ab\": 256, \"abc\": 257, "
                  "\"\\u0120a\": 258}, \"merges\": [\"a b\", [\"ab\", \"c\"], \"\\u0120 a\"]},"
                  " \"added_tokens\": [{\"id\": 259, \"content\": \"<|end|>\", \"special\": true}],"
                  " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false},"
                  " \"decoder\": {\"type\": \"ByteLevel\"}}",
                  vocab);
    free(vocab);
    return json;
}

static tokenizer *byte_level(void) {
    char *json = byte_level_json();
    tokenizer *t = tokenizer_load(model_with(json));
    free(json);
    return t;
}

static void test_invalid_utf8_is_rejected_with_offset(void) {
    tokenizer *t = byte_level();
    CHECK(t != NULL);
    if (!t) return;
    static const struct {
        const char *text;
        const char *offset;
    } bad[] = {
        {"abc\xff", "byte offset 3"},          {"\x80", "byte offset 0"},
        {"ok \xc0\xaf", "byte offset 3"},      /* overlong '/' */
        {"\xed\xa0\x80", "byte offset 0"},     /* a UTF-16 surrogate */
        {"xy\xe4\xbd", "byte offset 2"},       /* truncated at the end */
        {"\xf4\x90\x80\x80", "byte offset 0"}, /* above U+10FFFF */
        {"a\xe4z\xbd", "byte offset 1"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        int rc = tokenizer_encode(t, bad[i].text, strlen(bad[i].text), true, &ids, &n);
        CHECK_MSG(rc == -1, "case %zu accepted", i);
        CHECK_CONTAINS(kiln_last_error(), bad[i].offset);
        free(ids);
    }
    tokenizer_free(t);
}

static void test_byte_level_round_trip_and_merges(void) {
    tokenizer *t = byte_level();
    CHECK(t != NULL);
    if (!t) return;
    int32_t *ids;
    size_t n;
    /* "abc" merges to one token through "ab"; " a" through "Ġa" */
    CHECK(tokenizer_encode(t, "abc a", 5, false, &ids, &n) == 0);
    CHECK(n == 2 && ids[0] == 257 && ids[1] == 258);
    free(ids);
    const char *text = "x<|end|>y \xe4\xbd\xa0 \xf0\x9f\x98\x80\n\t\x01";
    CHECK(tokenizer_encode(t, text, strlen(text), false, &ids, &n) == 0);
    bool has_end = false;
    for (size_t i = 0; i < n; i++) has_end |= ids[i] == 259;
    CHECK(has_end);
    char *back = tokenizer_decode(t, ids, n, false);
    CHECK_STR(back, text);
    free(back);
    back = tokenizer_decode(t, ids, n, true);
    CHECK_STR(back, "xy \xe4\xbd\xa0 \xf0\x9f\x98\x80\n\t\x01");
    free(back);
    free(ids);
    CHECK(tokenizer_is_special(t, 259) && !tokenizer_is_special(t, 256));
    CHECK(tokenizer_token_id(t, "<|end|>") == 259);
    CHECK_STR(tokenizer_token_text(t, 257), "abc");
    CHECK(tokenizer_token_text(t, 100000) == NULL && tokenizer_token_text(t, -1) == NULL);
    tokenizer_free(t);
}

/* CHECK_STR evaluates its arguments more than once: push (or flush) once, then compare. */
#define PUSH_IS(d, id, want)                                                                       \
    do {                                                                                           \
        const char *got_ = detokenizer_push(d, id);                                                \
        CHECK_STR(got_, want);                                                                     \
    } while (0)
#define FLUSH_IS(d, want)                                                                          \
    do {                                                                                           \
        const char *got_ = detokenizer_flush(d);                                                   \
        CHECK_STR(got_, want);                                                                     \
    } while (0)

static void test_streaming_holds_incomplete_utf8(void) {
    tokenizer *t = byte_level();
    if (!t) return;
    /* "你" is e4 bd a0: three byte tokens; nothing may come out before the third */
    int32_t e4 = 0xe4, bd = 0xbd, a0 = 0xa0; /* byte b has id b in this vocabulary */
    detokenizer *d = detokenizer_new(t, false);
    PUSH_IS(d, e4, "");
    PUSH_IS(d, bd, "");
    PUSH_IS(d, a0, "\xe4\xbd\xa0");
    PUSH_IS(d, 'a', "a");
    PUSH_IS(d, e4, "");
    FLUSH_IS(d, "\xef\xbf\xbd");      /* incomplete at the end: U+FFFD */
    PUSH_IS(d, 0xff, "\xef\xbf\xbd"); /* never valid */
    PUSH_IS(d, -5, "");               /* unknown ids are skipped */
    PUSH_IS(d, 1 << 30, "");
    detokenizer_free(d);
    d = detokenizer_new(t, true);
    PUSH_IS(d, 259, ""); /* special, skipped */
    PUSH_IS(d, 257, "abc");
    detokenizer_free(d);
    tokenizer_free(t);
}

static void test_huge_inputs(void) {
    tokenizer *t = byte_level();
    if (!t) return;
    size_t big = 4u << 20;
    char *text = xmalloc(big + 1);
    /* one 4 MB word ("abab..." merges pairwise), 4 MB of spaces, then lines of mixed text */
    for (size_t i = 0; i < big; i++) text[i] = "ab"[i % 2];
    int32_t *ids;
    size_t n;
    CHECK(tokenizer_encode(t, text, big, false, &ids, &n) == 0);
    CHECK(n == big / 2 && ids[0] == 256);
    free(ids);
    memset(text, ' ', big);
    CHECK(tokenizer_encode(t, text, big, false, &ids, &n) == 0);
    CHECK(n == big);
    free(ids);
    for (size_t i = 0; i < big; i++) text[i] = "ab c\n\xe4\xbd\xa0!"[i % 9];
    size_t len = big - big % 9;
    CHECK(tokenizer_encode(t, text, len, true, &ids, &n) == 0);
    char *back = tokenizer_decode(t, ids, n, false);
    CHECK(back && strlen(back) == len && !memcmp(back, text, len));
    free(back);
    free(ids);
    free(text);
    tokenizer_free(t);
}

typedef struct {
    const tokenizer *t;
    int failures;
} thread_arg;

static void *encode_many(void *p) {
    thread_arg *a = p;
    for (int i = 0; i < 2000; i++) {
        char text[64];
        int len = snprintf(text, sizeof text, "abc a word%d and abc again %d", i % 97, i);
        int32_t *ids;
        size_t n;
        if (tokenizer_encode(a->t, text, (size_t)len, false, &ids, &n) < 0) {
            a->failures++;
            continue;
        }
        char *back = tokenizer_decode(a->t, ids, n, false);
        if (strcmp(back, text) != 0) a->failures++;
        free(back);
        free(ids);
    }
    return NULL;
}

static void test_concurrent_encoding_shares_the_cache_safely(void) {
    tokenizer *t = byte_level();
    if (!t) return;
    pthread_t th[4];
    thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg){t, 0};
        pthread_create(&th[i], NULL, encode_many, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(args[i].failures == 0);
    }
    tokenizer_free(t);
}

static void test_malformed_tokenizer_json(void) {
    expect_load_error("{\"model\": ", "tokenizer.json");
    expect_load_error("[1, 2, 3]", "top level must be an object");
    expect_load_error("{}", "\"model\" is missing");
    expect_load_error("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0]]}}",
                      "tokenizer model type Unigram is not supported");
    expect_load_error("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}",
                      "tokenizer model type WordPiece is not supported");
    expect_load_error("{\"model\": {\"type\": \"BPE\", \"vocab\": [1, 2], \"merges\": []}}",
                      "model.vocab");
    expect_load_error(
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"zero\"}, \"merges\": []}}",
        "model.vocab entry 0");
    expect_load_error(
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a\"]}}", "merge 0");
    expect_load_error(
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [[1, 2]]}}", "merge 0");
    expect_load_error(
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}",
        "missing from the vocabulary");
    expect_load_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -4}, \"merges\": []}}",
                      "model.vocab entry 0");
    expect_load_error(
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 99999999999}, \"merges\": []}}",
        "out of range");
    const char *base = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, ";
    static const struct {
        const char *rest, *fragment;
    } cases[] = {
        {"\"pre_tokenizer\": {\"type\": \"Shiny\"}}",
         "pre-tokenizer type \"Shiny\" is not supported"},
        {"\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Nope\"}]}}",
         "\"Nope\""},
        {"\"pre_tokenizer\": 7}", "pre_tokenizer must be an object"},
        {"\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}}}",
         "bad regular expression"},
        {"\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": 3}}", "pattern"},
        {"\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"String\": \" \"}, \"behavior\": "
         "\"Sideways\"}}",
         "split behavior \"Sideways\""},
        {"\"normalizer\": {\"type\": \"Precompiled\"}}", "normalizer type \"Precompiled\""},
        {"\"normalizer\": {\"type\": \"Prepend\"}}", "Prepend needs"},
        {"\"decoder\": {\"type\": \"CTC\"}}", "decoder type \"CTC\""},
        {"\"post_processor\": {\"type\": \"Magic\"}}", "post-processor type \"Magic\""},
        {"\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": "
         "{\"id\": \"<s>\"}}], \"special_tokens\": {}}}",
         "missing from its special_tokens"},
        {"\"added_tokens\": [{\"id\": \"x\", \"content\": \"<s>\"}]}", "added_tokens[0]"},
        {"\"added_tokens\": {}}", "\"added_tokens\" must be an array"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *json = xasprintf("%s%s", base, cases[i].rest);
        expect_load_error(json, cases[i].fragment);
        free(json);
    }
}

static void test_malformed_llama2c_files(void) {
    char path[300];
    snprintf(path, sizeof path, "%s/tok.bin", tmpdir);
    /* max_token_length, then a token whose length runs past the end */
    const unsigned char truncated[] = {7, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 'a'};
    write_file_atomic(path, truncated, sizeof truncated);
    CHECK(tokenizer_load(path) == NULL);
    CHECK_CONTAINS(kiln_last_error(), "truncated");
    write_file_atomic(path, "ab", 2);
    CHECK(tokenizer_load(path) == NULL);
    CHECK_CONTAINS(kiln_last_error(), "too short");
    CHECK(tokenizer_load("/nonexistent/kiln/tok.bin") == NULL);
    CHECK_CONTAINS(kiln_last_error(), "/nonexistent/kiln/tok.bin");
}

static void test_llama2c_file_when_shared_data_exists(void) {
    const char *shared = getenv("SHARED");
    if (!shared) return;
    char *path = xasprintf("%s/models/stories260K/tok512.bin", shared);
    tokenizer *t = tokenizer_load(path);
    free(path);
    CHECK(t != NULL);
    if (!t) return;
    CHECK(tokenizer_vocab_size(t) == 512 && tokenizer_bos(t) == 1);
    const int32_t *eos;
    CHECK(tokenizer_eos_ids(t, &eos) == 1 && eos[0] == 2);
    int32_t *ids;
    size_t n;
    CHECK(tokenizer_encode(t, "", 0, true, &ids, &n) == 0 && n == 1 && ids[0] == 1);
    free(ids);
    tokenizer_free(t);
}

/* A BPE whose merges build exactly the given words (and their prefixes) out of characters, so
 * each pre-tokenizer piece that is one of the words comes out as one id: the ids show how the
 * text was split. `pre` is spliced into tokenizer.json as the pre_tokenizer. */
static tokenizer *piece_revealer(const char *const *words, size_t n_words, const char *pre) {
    char *names[256];
    size_t n = 0;
    char *merges = xstrdup("");
    for (size_t w = 0; w < n_words; w++)
        for (size_t k = 1; k <= strlen(words[w]); k++) {
            char *both[2] = {xasprintf("%.*s", (int)k, words[w]), xasprintf("%c", words[w][k - 1])};
            for (int b = 0; b < 2; b++) {
                bool have = false;
                for (size_t i = 0; i < n; i++) have |= !strcmp(names[i], both[b]);
                if (!have && n < ARRAY_LEN(names))
                    names[n++] = both[b];
                else
                    free(both[b]);
            }
            if (k >= 2) {
                char *m = xasprintf("%s%s[\"%.*s\", \"%c\"]", merges, *merges ? ", " : "",
                                    (int)k - 1, words[w], words[w][k - 1]);
                free(merges);
                merges = m;
            }
        }
    char *vocab = xstrdup("");
    for (size_t i = 0; i < n; i++) {
        char *v = xasprintf("%s%s\"%s\": %zu", vocab, i ? ", " : "", names[i], i);
        free(vocab);
        vocab = v;
        free(names[i]);
    }
    char *json = xasprintf("{\"model\": {\"type\": \"BPE\", \"vocab\": {%s}, \"merges\": [%s]},"
                           " \"pre_tokenizer\": %s}",
                           vocab, merges, pre);
    tokenizer *t = tokenizer_load(model_with(json));
    CHECK_MSG(t != NULL, "%s", kiln_last_error());
    free(json);
    free(vocab);
    free(merges);
    return t;
}

/* Encodes text and checks that the pieces are exactly `want` (NULL-terminated). */
static void check_pieces(tokenizer *t, const char *text, const char *const *want) {
    int32_t *ids;
    size_t n, k = 0;
    CHECK(tokenizer_encode(t, text, strlen(text), false, &ids, &n) == 0);
    for (; want[k]; k++)
        CHECK_MSG(k < n && ids[k] == tokenizer_token_id(t, want[k]), "%s: piece %zu should be %s",
                  text, k, want[k]);
    CHECK_MSG(n == k, "%s: %zu pieces, expected %zu", text, n, k);
    free(ids);
}

/* The examples of Hugging Face's SplitDelimiterBehavior documentation ("the-final--countdown"
 * split on "-"), which the JS reference cannot check (it lacks MergedWith* and Contiguous). */
static void test_split_behaviors_as_documented(void) {
    /* longer words first: their merges must rank before those of the words inside them */
    static const char *const words[] = {"-final", "-countdown", "the-",      "final-", "--",
                                        "the",    "final",      "countdown", "-"};
    static const struct {
        const char *behavior;
        const char *pieces[8];
    } cases[] = {
        {"Removed", {"the", "final", "countdown"}},
        {"Isolated", {"the", "-", "final", "-", "-", "countdown"}},
        {"MergedWithPrevious", {"the-", "final-", "-", "countdown"}},
        {"MergedWithNext", {"the", "-final", "-", "-countdown"}},
        {"Contiguous", {"the", "-", "final", "--", "countdown"}},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *pre = xasprintf("{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, "
                              "\"behavior\": \"%s\", \"invert\": false}",
                              cases[i].behavior);
        tokenizer *t = piece_revealer(words, ARRAY_LEN(words), pre);
        free(pre);
        if (!t) continue;
        check_pieces(t, "the-final--countdown", cases[i].pieces);
        tokenizer_free(t);
    }
}

/* Hugging Face's Punctuation (Fn(char) pattern): every punctuation character is its own
 * piece; Digits without individual_digits keeps runs together. */
static void test_punctuation_and_digit_runs(void) {
    static const char *const words[] = {"Hey", "!", "42", "x", "4", "2"};
    tokenizer *t = piece_revealer(words, ARRAY_LEN(words), "{\"type\": \"Punctuation\"}");
    if (t) {
        static const char *const want[] = {"Hey", "!", "!", NULL};
        check_pieces(t, "Hey!!", want);
        tokenizer_free(t);
    }
    t = piece_revealer(words, ARRAY_LEN(words),
                       "{\"type\": \"Digits\", \"individual_digits\": false}");
    if (t) {
        static const char *const want[] = {"x", "42", "x", NULL};
        check_pieces(t, "x42x", want);
        tokenizer_free(t);
    }
}

static void write_in(const char *dir, const char *name, const char *text) {
    char *path = path_join(dir, name);
    write_file_atomic(path, text, strlen(text));
    free(path);
}

/* tokenizer_config.json and generation_config.json: bos/eos as strings or {"content": ...},
 * eos_token_id as an int or a list, add_bos_token/add_eos_token for Llama-class tokenizers. */
static void test_configs_give_bos_eos_and_stop_ids(void) {
    char *json = byte_level_json();
    const char *dir = model_with(json);
    free(json);
    write_in(dir, "tokenizer_config.json",
             "{\"tokenizer_class\": \"LlamaTokenizer\", \"bos_token\": {\"content\": \"<|end|>\"},"
             " \"eos_token\": \"abc\", \"add_bos_token\": true, \"add_eos_token\": true,"
             " \"model_max_length\": 1000000000000000019884624838656}");
    write_in(dir, "generation_config.json", "{\"eos_token_id\": [259, 97, 259]}");
    tokenizer *t = tokenizer_load(dir);
    CHECK_MSG(t != NULL, "%s", kiln_last_error());
    if (!t) return;
    CHECK(tokenizer_bos(t) == 259);
    const int32_t *eos;
    size_t n_eos = tokenizer_eos_ids(t, &eos);
    CHECK(n_eos == 3 && eos[0] == 257 && eos[1] == 259 && eos[2] == 97);
    int32_t *ids;
    size_t n;
    CHECK(tokenizer_encode(t, "ab", 2, true, &ids, &n) == 0);
    CHECK(n == 3 && ids[0] == 259 && ids[1] == 256 && ids[2] == 257); /* BOS ab EOS */
    free(ids);
    CHECK(tokenizer_encode(t, "ab", 2, false, &ids, &n) == 0);
    CHECK(n == 1 && ids[0] == 256);
    free(ids);
    tokenizer_free(t);
    write_in(dir, "generation_config.json", "{\"eos_token_id\": 97}");
    write_in(dir, "tokenizer_config.json", "{\"eos_token\": null}");
    t = tokenizer_load(dir);
    CHECK(t != NULL);
    if (!t) return;
    n_eos = tokenizer_eos_ids(t, &eos);
    CHECK(n_eos == 1 && eos[0] == 97);
    CHECK(tokenizer_bos(t) == -1);
    tokenizer_free(t);
    write_in(dir, "generation_config.json", "{\"eos_token_id\": ");
    CHECK(tokenizer_load(dir) == NULL);
    CHECK_CONTAINS(kiln_last_error(), "generation_config.json");
}

int main(void) {
    if (!mkdtemp(tmpdir)) return 1;
    RUN(test_invalid_utf8_is_rejected_with_offset);
    RUN(test_byte_level_round_trip_and_merges);
    RUN(test_streaming_holds_incomplete_utf8);
    RUN(test_huge_inputs);
    RUN(test_concurrent_encoding_shares_the_cache_safely);
    RUN(test_split_behaviors_as_documented);
    RUN(test_punctuation_and_digit_runs);
    RUN(test_configs_give_bos_eos_and_stop_ids);
    RUN(test_malformed_tokenizer_json);
    RUN(test_malformed_llama2c_files);
    RUN(test_llama2c_file_when_shared_data_exists);
    char *cmd = xasprintf("rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) printf("# could not remove %s\n", tmpdir);
    free(cmd);
    return CHECK_DONE();
}
