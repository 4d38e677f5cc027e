/*
 * tok_load.c — builds a tokenizer from a model folder: tokenizer.json (model, added tokens,
 * normalizer, pre-tokenizer, post-processor, decoder), tokenizer_config.json (bos/eos,
 * add_bos_token/add_eos_token, clean_up_tokenization_spaces) and generation_config.json
 * (eos_token_id: the stop tokens). Anything unsupported or malformed fails with one line
 * that names it.
 */
#include "text/tok_internal.h"

#include <stdlib.h>
#include <string.h>

#define TJ "tokenizer.json: "

static const char *str_or_null(const json_t *obj, const char *key) {
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool bool_or(const json_t *obj, const char *key, bool dflt) {
    const json_t *v = json_object_get(obj, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

static const char *type_of(const json_t *obj, const char *what) {
    if (!json_is_object(obj)) {
        kiln_error(TJ "%s must be an object", what);
        return NULL;
    }
    const char *type = str_or_null(obj, "type");
    if (!type) kiln_error(TJ "%s has no \"type\"", what);
    return type;
}

/* A pattern object {"String": s} or {"Regex": r}. */
static int get_pattern(const json_t *obj, const char *what, const char **str, size_t *len,
                       bool *is_regex) {
    const json_t *p = json_object_get(obj, "pattern");
    const json_t *s = json_object_get(p, "String");
    const json_t *r = json_object_get(p, "Regex");
    if (json_is_string(s)) {
        *str = json_string_value(s);
        *len = json_string_length(s);
        *is_regex = false;
        return 0;
    }
    if (json_is_string(r)) {
        *str = json_string_value(r);
        *len = json_string_length(r);
        *is_regex = true;
        return 0;
    }
    kiln_error(TJ "%s needs \"pattern\": {\"String\": ...} or {\"Regex\": ...}", what);
    return -1;
}

/* ---- model ---- */
static int add_vocab_entry(tokenizer *t, const char *text, size_t len, int64_t id) {
    if (id < 0 || id > 16000000) {
        kiln_error(TJ "token id %lld is out of range", (long long)id);
        return -1;
    }
    if (id >= t->n_vocab) {
        int32_t n = t->n_vocab ? t->n_vocab : 1024;
        while (n <= id) n *= 2;
        tokenizer_set_vocab_size(t, n);
    }
    if (!t->text[id]) {
        t->text[id] = xmalloc(len + 1);
        memcpy(t->text[id], text, len);
        t->text[id][len] = 0;
        t->text_len[id] = (uint32_t)len;
    }
    return 0;
}

static int32_t vocab_id(const tokenizer *t, const char *s, size_t n) {
    return strmap_get(&t->vocab, s, n);
}

/* Merges are read in batches: the hash-table slots of a whole batch are prefetched before
 * any is looked up, so that the cache misses of the 3 lookups per merge overlap. */
enum { MERGE_BATCH = 64 };
typedef struct merge_batch {
    tbuf text; /* a, b and a+b (prefix dropped) of each merge */
    size_t off[MERGE_BATCH][3], len[MERGE_BATCH][3];
    uint64_t hash[MERGE_BATCH][3];
    int32_t id[MERGE_BATCH][3];
    size_t n;
} merge_batch;

static int flush_merges(tokenizer *t, merge_batch *mb, int32_t first_rank) {
    for (size_t i = 0; i < mb->n; i++)
        for (int k = 0; k < 3; k++) strmap_prefetch(&t->vocab, mb->hash[i][k]);
    for (size_t i = 0; i < mb->n; i++) {
        for (int k = 0; k < 3; k++)
            mb->id[i][k] = strmap_get_hashed(&t->vocab, mb->text.p + mb->off[i][k], mb->len[i][k],
                                             mb->hash[i][k]);
        if (mb->id[i][0] < 0 || mb->id[i][1] < 0 || mb->id[i][2] < 0) {
            kiln_error(TJ "merge %d (\"%.*s\" + \"%.*s\") uses a token missing from the "
                          "vocabulary",
                       first_rank + (int32_t)i, (int)mb->len[i][0], mb->text.p + mb->off[i][0],
                       (int)mb->len[i][1], mb->text.p + mb->off[i][1]);
            return -1;
        }
        pairmap_prefetch(&t->merges, mb->id[i][0], mb->id[i][1]);
    }
    for (size_t i = 0; i < mb->n; i++)
        pairmap_put(&t->merges, mb->id[i][0], mb->id[i][1], first_rank + (int32_t)i, mb->id[i][2]);
    mb->n = 0;
    mb->text.n = 0;
    return 0;
}

static void batch_add(merge_batch *mb, int k, const char *s, size_t n) {
    mb->off[mb->n][k] = mb->text.n;
    mb->len[mb->n][k] = n;
    tbuf_put(&mb->text, s, n);
}

static int load_merges(tokenizer *t, tok_span span) {
    if (!span.p || *span.p == 'n') return 0; /* absent or null */
    if (*span.p != '[') {
        kiln_error(TJ "model.merges must be an array");
        return -1;
    }
    pairmap_init(&t->merges, span.n / 12);
    size_t prefix_len = t->subword_prefix ? strlen(t->subword_prefix) : 0;
    tbuf a = {0}, b = {0};
    merge_batch *mb = xcalloc(1, sizeof *mb);
    tok_iter it = {span.p, span.p + span.n, false};
    int rc = 0;
    int32_t rank = 0;
    for (;; rank++) {
        int got = tokjson_next_merge(&it, &a, &b);
        if (got == 0) break;
        if (got < 0) {
            kiln_error(got == -2 ? TJ "merge %d must be \"a b\" or [\"a\", \"b\"]"
                                 : TJ "model.merges is malformed near merge %d",
                       rank);
            rc = -1;
            break;
        }
        size_t skip = b.n >= prefix_len ? prefix_len : 0;
        batch_add(mb, 0, a.p, a.n);
        batch_add(mb, 1, b.p, b.n);
        batch_add(mb, 2, a.p, a.n);
        tbuf_put(&mb->text, b.p + skip, b.n - skip); /* the joined token */
        mb->len[mb->n][2] += b.n - skip;
        mb->n++;
        if (mb->n == MERGE_BATCH) {
            for (size_t i = 0; i < mb->n; i++)
                for (int k = 0; k < 3; k++)
                    mb->hash[i][k] = tok_hash(mb->text.p + mb->off[i][k], mb->len[i][k]);
            if (flush_merges(t, mb, rank + 1 - MERGE_BATCH) < 0) {
                rc = -1;
                break;
            }
        }
    }
    if (rc == 0 && mb->n) {
        for (size_t i = 0; i < mb->n; i++)
            for (int k = 0; k < 3; k++)
                mb->hash[i][k] = tok_hash(mb->text.p + mb->off[i][k], mb->len[i][k]);
        rc = flush_merges(t, mb, rank - (int32_t)mb->n);
    }
    tbuf_free(&a);
    tbuf_free(&b);
    tbuf_free(&mb->text);
    free(mb);
    return rc;
}

static char *nonempty_dup(const char *s) {
    return s && *s ? xstrdup(s) : NULL;
}

static int load_vocab(tokenizer *t, tok_span span) {
    if (!span.p || *span.p != '{') {
        kiln_error(TJ "model.vocab must be an object of token -> id");
        return -1;
    }
    tbuf key = {0};
    tok_iter it = {span.p, span.p + span.n, false};
    int rc = 0;
    for (size_t i = 0;; i++) {
        long long id;
        int got = tokjson_next_vocab(&it, &key, &id);
        if (got == 0) break;
        if (got < 0) {
            kiln_error(TJ "model.vocab entry %zu is not \"token\": id", i);
            rc = -1;
            break;
        }
        if (add_vocab_entry(t, key.p, key.n, id) < 0) {
            rc = -1;
            break;
        }
    }
    tbuf_free(&key);
    return rc;
}

static int load_model(tokenizer *t, const json_t *model, tok_span vocab, tok_span merges) {
    if (!model || json_is_null(model)) {
        kiln_error(TJ "\"model\" is missing");
        return -1;
    }
    const char *type = json_is_object(model) ? str_or_null(model, "type") : NULL;
    if (!type && vocab.p && merges.p) type = "BPE";
    if (!type) {
        kiln_error(TJ "\"model\" has no \"type\"");
        return -1;
    }
    if (strcmp(type, "BPE") != 0) {
        kiln_error(TJ "tokenizer model type %s is not supported (supported: BPE)", type);
        return -1;
    }
    const json_t *dropout = json_object_get(model, "dropout");
    if (json_is_number(dropout) && json_number_value(dropout) > 0)
        log_warn("tokenizer.json: BPE dropout is ignored (kiln encodes deterministically)");
    t->byte_fallback = bool_or(model, "byte_fallback", false);
    t->fuse_unk = bool_or(model, "fuse_unk", false);
    t->ignore_merges = bool_or(model, "ignore_merges", false);
    t->subword_prefix = nonempty_dup(str_or_null(model, "continuing_subword_prefix"));
    t->word_suffix = nonempty_dup(str_or_null(model, "end_of_word_suffix"));

    if (load_vocab(t, vocab) < 0) return -1;
    strmap_init(&t->vocab, (size_t)t->n_vocab);
    /* index the copies (they live as long as the tokenizer) */
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (t->text[id]) strmap_put(&t->vocab, t->text[id], t->text_len[id], id);
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_ids[b] = vocab_id(t, name, 6);
    }
    const char *unk = str_or_null(model, "unk_token");
    if (unk) t->unk_id = vocab_id(t, unk, strlen(unk));
    return load_merges(t, merges);
}

/* ---- added tokens ---- */
static int load_added(tokenizer *t, const json_t *added) {
    if (!added || json_is_null(added)) return 0;
    if (!json_is_array(added)) {
        kiln_error(TJ "\"added_tokens\" must be an array");
        return -1;
    }
    t->added = xcalloc(json_array_size(added) + 1, sizeof *t->added);
    for (size_t i = 0; i < json_array_size(added); i++) {
        const json_t *a = json_array_get(added, i);
        const json_t *id = json_object_get(a, "id"), *content = json_object_get(a, "content");
        if (!json_is_integer(id) || !json_is_string(content)) {
            kiln_error(TJ "added_tokens[%zu] needs an integer \"id\" and a string \"content\"", i);
            return -1;
        }
        added_token *tok = &t->added[t->n_added++];
        tok->len = json_string_length(content);
        tok->content = xmalloc(tok->len + 1);
        memcpy(tok->content, json_string_value(content), tok->len + 1);
        tok->id = (int32_t)json_integer_value(id);
        tok->special = bool_or(a, "special", false);
        tok->lstrip = bool_or(a, "lstrip", false);
        tok->rstrip = bool_or(a, "rstrip", false);
        tok->single_word = bool_or(a, "single_word", false);
        tok->normalized = bool_or(a, "normalized", !tok->special);
        if (add_vocab_entry(t, tok->content, tok->len, tok->id) < 0) return -1;
    }
    strmap_init(&t->added_index, t->n_added);
    for (size_t i = t->n_added; i-- > 0;) { /* on duplicates the first wins */
        added_token *tok = &t->added[i];
        t->flags[tok->id] |= TOK_ADDED | (tok->special ? TOK_SPECIAL : 0);
        strmap_put(&t->added_index, tok->content, tok->len, tok->id);
    }
    added_trie_build(&t->trie_raw, t->added, t->n_added, false);
    added_trie_build(&t->trie_norm, t->added, t->n_added, true);
    return 0;
}

/* ---- normalizers ---- */
static int add_normalizer(tokenizer *t, const json_t *n) {
    if (!n || json_is_null(n)) return 0;
    const char *type = type_of(n, "normalizer");
    if (!type) return -1;
    if (!strcmp(type, "Sequence")) {
        const json_t *list = json_object_get(n, "normalizers");
        if (!json_is_array(list)) {
            kiln_error(TJ "normalizer Sequence needs a \"normalizers\" array");
            return -1;
        }
        for (size_t i = 0; i < json_array_size(list); i++)
            if (add_normalizer(t, json_array_get(list, i)) < 0) return -1;
        return 0;
    }
    normalizer nm = {0};
    if (!strcmp(type, "NFC"))
        nm.kind = NORM_NFC;
    else if (!strcmp(type, "NFD"))
        nm.kind = NORM_NFD;
    else if (!strcmp(type, "NFKC"))
        nm.kind = NORM_NFKC;
    else if (!strcmp(type, "NFKD"))
        nm.kind = NORM_NFKD;
    else if (!strcmp(type, "Lowercase"))
        nm.kind = NORM_LOWERCASE;
    else if (!strcmp(type, "StripAccents"))
        nm.kind = NORM_STRIP_ACCENTS;
    else if (!strcmp(type, "Strip")) {
        nm.kind = NORM_STRIP;
        nm.left = bool_or(n, "strip_left", true);
        nm.right = bool_or(n, "strip_right", true);
    } else if (!strcmp(type, "Prepend")) {
        const char *p = str_or_null(n, "prepend");
        if (!p) {
            kiln_error(TJ "normalizer Prepend needs a string \"prepend\"");
            return -1;
        }
        nm.kind = NORM_PREPEND;
        nm.text = xstrdup(p);
    } else if (!strcmp(type, "Replace")) {
        const char *pat, *content = str_or_null(n, "content");
        size_t plen;
        bool regex;
        if (get_pattern(n, "normalizer Replace", &pat, &plen, &regex) < 0) return -1;
        if (!content) {
            kiln_error(TJ "normalizer Replace needs a string \"content\"");
            return -1;
        }
        nm.kind = NORM_REPLACE;
        nm.text = xstrdup(content);
        if (regex) {
            nm.re = tok_regex_compile(pat, plen, false, TJ "normalizer Replace");
            if (!nm.re) {
                free(nm.text);
                return -1;
            }
        } else {
            nm.pattern = xmalloc(plen + 1);
            memcpy(nm.pattern, pat, plen + 1);
            nm.pattern_len = plen;
        }
    } else {
        kiln_error(TJ
                   "normalizer type \"%s\" is not supported (supported: Sequence, NFC, NFD, NFKC, "
                   "NFKD, Lowercase, Strip, StripAccents, Prepend, Replace)",
                   type);
        return -1;
    }
    t->norms = xrealloc(t->norms, (t->n_norms + 1) * sizeof *t->norms);
    t->norms[t->n_norms++] = nm;
    return 0;
}

/* ---- pre-tokenizers ---- */
static int parse_behavior(const json_t *p, enum split_behavior dflt, enum split_behavior *out) {
    const char *b = str_or_null(p, "behavior");
    *out = dflt;
    if (!b) return 0;
    static const struct {
        const char *name;
        enum split_behavior b;
    } names[] = {{"Removed", SPLIT_REMOVED},
                 {"Isolated", SPLIT_ISOLATED},
                 {"MergedWithPrevious", SPLIT_MERGED_WITH_PREVIOUS},
                 {"MergedWithNext", SPLIT_MERGED_WITH_NEXT},
                 {"Contiguous", SPLIT_CONTIGUOUS}};
    for (size_t i = 0; i < ARRAY_LEN(names); i++)
        if (!strcasecmp(b, names[i].name)) {
            *out = names[i].b;
            return 0;
        }
    kiln_error(TJ "split behavior \"%s\" is not supported", b);
    return -1;
}

static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static int add_pretokenizer(tokenizer *t, const json_t *p) {
    if (!p || json_is_null(p)) return 0;
    const char *type = type_of(p, "pre_tokenizer");
    if (!type) return -1;
    if (!strcmp(type, "Sequence")) {
        const json_t *list = json_object_get(p, "pretokenizers");
        if (!json_is_array(list)) {
            kiln_error(TJ "pre_tokenizer Sequence needs a \"pretokenizers\" array");
            return -1;
        }
        for (size_t i = 0; i < json_array_size(list); i++)
            if (add_pretokenizer(t, json_array_get(list, i)) < 0) return -1;
        return 0;
    }
    pretokenizer pt = {0};
    if (!strcmp(type, "ByteLevel")) {
        pt.kind = PRE_BYTE_LEVEL;
        pt.add_prefix_space = bool_or(p, "add_prefix_space", true);
        if (bool_or(p, "use_regex", true)) {
            pt.re = tok_regex_compile(GPT2_PATTERN, sizeof GPT2_PATTERN - 1, false, "ByteLevel");
            if (!pt.re) return -1;
        }
    } else if (!strcmp(type, "Split")) {
        const char *pat;
        size_t plen;
        bool regex;
        pt.kind = PRE_SPLIT;
        if (get_pattern(p, "pre_tokenizer Split", &pat, &plen, &regex) < 0) return -1;
        if (parse_behavior(p, SPLIT_ISOLATED, &pt.behavior) < 0) return -1;
        pt.invert = bool_or(p, "invert", false);
        pt.re = tok_regex_compile(pat, plen, !regex, TJ "pre_tokenizer Split");
        if (!pt.re) return -1;
    } else if (!strcmp(type, "Metaspace")) {
        pt.kind = PRE_METASPACE;
        const char *r = str_or_null(p, "replacement");
        if (!r) r = "\xe2\x96\x81";
        if (strlen(r) >= sizeof pt.replacement || !*r) {
            kiln_error(TJ "Metaspace replacement must be one character");
            return -1;
        }
        strcpy(pt.replacement, r);
        const char *scheme = str_or_null(p, "prepend_scheme");
        if (scheme && !strcmp(scheme, "first"))
            pt.prepend = PREPEND_FIRST;
        else if (scheme && !strcmp(scheme, "never"))
            pt.prepend = PREPEND_NEVER;
        else if (scheme)
            pt.prepend = PREPEND_ALWAYS;
        else
            pt.prepend = bool_or(p, "add_prefix_space", true) ? PREPEND_ALWAYS : PREPEND_NEVER;
        pt.split = bool_or(p, "split", true);
    } else if (!strcmp(type, "Digits")) {
        pt.kind = PRE_DIGITS;
        pt.individual_digits = bool_or(p, "individual_digits", false);
    } else if (!strcmp(type, "Punctuation")) {
        pt.kind = PRE_PUNCTUATION;
        if (parse_behavior(p, SPLIT_ISOLATED, &pt.behavior) < 0) return -1;
    } else if (!strcmp(type, "Whitespace")) {
        pt.kind = PRE_WHITESPACE;
        static const char words[] = "\\w+|[^\\w\\s]+";
        pt.re = tok_regex_compile(words, sizeof words - 1, false, "Whitespace");
        if (!pt.re) return -1;
    } else if (!strcmp(type, "WhitespaceSplit")) {
        pt.kind = PRE_WHITESPACE_SPLIT;
    } else {
        kiln_error(TJ "pre-tokenizer type \"%s\" is not supported (supported: Sequence, ByteLevel, "
                      "Split, Metaspace, Digits, Punctuation, Whitespace, WhitespaceSplit)",
                   type);
        return -1;
    }
    t->pretoks = xrealloc(t->pretoks, (t->n_pretoks + 1) * sizeof *t->pretoks);
    t->pretoks[t->n_pretoks++] = pt;
    return 0;
}

/* ---- post-processors: only the ids they add around a single sequence matter here ---- */
static int token_pair_id(const json_t *pair, const char *what, int32_t *id) {
    if (!json_is_array(pair) || json_array_size(pair) != 2 ||
        !json_is_integer(json_array_get(pair, 1))) {
        kiln_error(TJ "post_processor %s must be [\"token\", id]", what);
        return -1;
    }
    *id = (int32_t)json_integer_value(json_array_get(pair, 1));
    return 0;
}

static int template_ids(const json_t *specials, const json_t *item, ivec *out) {
    const json_t *sp = json_object_get(item, "SpecialToken");
    const char *name = str_or_null(sp, "id");
    if (!name) {
        kiln_error(TJ "TemplateProcessing item must be a Sequence or a SpecialToken with an id");
        return -1;
    }
    const json_t *ids = json_object_get(json_object_get(specials, name), "ids");
    if (!json_is_array(ids)) {
        kiln_error(TJ "TemplateProcessing uses \"%s\", missing from its special_tokens", name);
        return -1;
    }
    for (size_t i = 0; i < json_array_size(ids); i++) {
        const json_t *v = json_array_get(ids, i);
        if (!json_is_integer(v)) {
            kiln_error(TJ "special_tokens[\"%s\"].ids must hold integers", name);
            return -1;
        }
        ivec_push(out, (int32_t)json_integer_value(v));
    }
    return 0;
}

static int add_post_processor(tokenizer *t, const json_t *p) {
    if (!p || json_is_null(p)) return 0;
    const char *type = type_of(p, "post_processor");
    if (!type) return -1;
    ivec pre = {0}, post = {0};
    if (!strcmp(type, "Sequence")) {
        const json_t *list = json_object_get(p, "processors");
        if (!json_is_array(list)) {
            kiln_error(TJ "post_processor Sequence needs a \"processors\" array");
            return -1;
        }
        for (size_t i = 0; i < json_array_size(list); i++)
            if (add_post_processor(t, json_array_get(list, i)) < 0) return -1;
        return 0;
    } else if (!strcmp(type, "ByteLevel")) {
        return 0; /* it only adjusts offsets */
    } else if (!strcmp(type, "TemplateProcessing")) {
        const json_t *single = json_object_get(p, "single");
        const json_t *specials = json_object_get(p, "special_tokens");
        if (!json_is_array(single)) {
            kiln_error(TJ "TemplateProcessing needs a \"single\" array");
            return -1;
        }
        bool seen_sequence = false;
        for (size_t i = 0; i < json_array_size(single); i++) {
            const json_t *item = json_array_get(single, i);
            if (json_object_get(item, "Sequence")) {
                seen_sequence = true;
                continue;
            }
            if (template_ids(specials, item, seen_sequence ? &post : &pre) < 0) {
                free(pre.p);
                free(post.p);
                return -1;
            }
        }
    } else if (!strcmp(type, "RobertaProcessing") || !strcmp(type, "BertProcessing")) {
        int32_t cls, sep;
        if (token_pair_id(json_object_get(p, "cls"), "cls", &cls) < 0 ||
            token_pair_id(json_object_get(p, "sep"), "sep", &sep) < 0)
            return -1;
        ivec_push(&pre, cls);
        ivec_push(&post, sep);
    } else {
        kiln_error(TJ "post-processor type \"%s\" is not supported (supported: TemplateProcessing, "
                      "ByteLevel, RobertaProcessing, BertProcessing, Sequence)",
                   type);
        return -1;
    }
    /* a later processor wraps the result of the earlier ones */
    ivec_append(&pre, t->post_prefix.p, t->post_prefix.n);
    free(t->post_prefix.p);
    t->post_prefix = pre;
    ivec_append(&t->post_suffix, post.p, post.n);
    free(post.p);
    return 0;
}

/* ---- decoders ---- */
static int add_decoder(tokenizer *t, const json_t *d) {
    if (!d || json_is_null(d)) return 0;
    const char *type = type_of(d, "decoder");
    if (!type) return -1;
    if (!strcmp(type, "Sequence")) {
        const json_t *list = json_object_get(d, "decoders");
        if (!json_is_array(list)) {
            kiln_error(TJ "decoder Sequence needs a \"decoders\" array");
            return -1;
        }
        for (size_t i = 0; i < json_array_size(list); i++)
            if (add_decoder(t, json_array_get(list, i)) < 0) return -1;
        return 0;
    }
    decoder dec = {0};
    if (!strcmp(type, "ByteLevel"))
        dec.kind = DEC_BYTE_LEVEL;
    else if (!strcmp(type, "ByteFallback"))
        dec.kind = DEC_BYTE_FALLBACK;
    else if (!strcmp(type, "Fuse"))
        dec.kind = DEC_FUSE;
    else if (!strcmp(type, "Metaspace")) {
        dec.kind = DEC_METASPACE;
        const char *r = str_or_null(d, "replacement");
        dec.pattern = xstrdup(r ? r : "\xe2\x96\x81");
        const char *scheme = str_or_null(d, "prepend_scheme");
        dec.prepend = scheme ? strcmp(scheme, "never") != 0 : bool_or(d, "add_prefix_space", true);
    } else if (!strcmp(type, "Replace")) {
        const char *pat, *content = str_or_null(d, "content");
        size_t plen;
        bool regex;
        if (get_pattern(d, "decoder Replace", &pat, &plen, &regex) < 0) return -1;
        if (regex || !content || plen == 0) {
            kiln_error(TJ "decoder Replace supports a non-empty String pattern and a content");
            return -1;
        }
        dec.kind = DEC_REPLACE;
        dec.pattern = xstrdup(pat);
        dec.content = xstrdup(content);
    } else if (!strcmp(type, "Strip")) {
        const char *c = str_or_null(d, "content");
        const json_t *start = json_object_get(d, "start"), *stop = json_object_get(d, "stop");
        dec.kind = DEC_STRIP;
        dec.content = xstrdup(c ? c : " ");
        dec.start = json_is_integer(start) ? (int)json_integer_value(start) : 0;
        dec.stop = json_is_integer(stop) ? (int)json_integer_value(stop) : 0;
    } else {
        kiln_error(TJ "decoder type \"%s\" is not supported (supported: Sequence, ByteLevel, "
                      "Metaspace, Replace, ByteFallback, Fuse, Strip)",
                   type);
        return -1;
    }
    t->decoders = xrealloc(t->decoders, (t->n_decoders + 1) * sizeof *t->decoders);
    t->decoders[t->n_decoders++] = dec;
    return 0;
}

/* ---- tokenizer_config.json and generation_config.json ---- */
static const char *token_content(const json_t *cfg, const char *key) {
    const json_t *v = json_object_get(cfg, key);
    if (json_is_string(v)) return json_string_value(v);
    return str_or_null(v, "content"); /* {"content": "<s>", ...} */
}

static void add_eos(tokenizer *t, int32_t id) {
    if (id < 0) return;
    for (size_t i = 0; i < t->eos.n; i++)
        if (t->eos.p[i] == id) return;
    ivec_push(&t->eos, id);
}

static int load_configs(tokenizer *t, const char *dir, const json_t *post) {
    char *path = path_join(dir, "tokenizer_config.json");
    json_t *cfg = json_object();
    if (path_exists(path)) { /* model_max_length may exceed 64 bits: read numbers as reals */
        json_error_t err;
        json_decref(cfg);
        cfg = json_load_file(path, JSON_DECODE_INT_AS_REAL, &err);
        if (!cfg) kiln_error("%s:%d:%d: %s", path, err.line, err.column, err.text);
    }
    free(path);
    if (!cfg) return -1;
    const char *bos = token_content(cfg, "bos_token"), *eos = token_content(cfg, "eos_token");
    if (bos) t->bos = tokenizer_token_id(t, bos);
    int32_t eos_id = eos ? tokenizer_token_id(t, eos) : -1;
    add_eos(t, eos_id);
    t->clean_up_spaces = bool_or(cfg, "clean_up_tokenization_spaces", false);
    const json_t *addb = json_object_get(cfg, "add_bos_token");
    const json_t *adde = json_object_get(cfg, "add_eos_token");
    const char *post_type = post && json_is_object(post) ? str_or_null(post, "type") : NULL;
    const char *cls = str_or_null(cfg, "tokenizer_class");
    /* transformers' Llama and Gemma tokenizers rebuild the template from add_bos_token /
     * add_eos_token (other classes, and non-template post-processors, are left alone) */
    bool llama_like = cls && (strstr(cls, "Llama") || strstr(cls, "Gemma"));
    if (llama_like && (json_is_boolean(addb) || json_is_boolean(adde)) &&
        (!post_type || !strcmp(post_type, "TemplateProcessing"))) {
        t->post_prefix.n = t->post_suffix.n = 0;
        if (json_is_true(addb) && t->bos >= 0) ivec_push(&t->post_prefix, t->bos);
        if (json_is_true(adde) && eos_id >= 0) ivec_push(&t->post_suffix, eos_id);
    }
    /* additional special tokens count as special for skip_special_tokens */
    const json_t *extra = json_object_get(cfg, "additional_special_tokens");
    for (size_t i = 0; json_is_array(extra) && i < json_array_size(extra); i++) {
        const json_t *v = json_array_get(extra, i);
        const char *s = json_is_string(v) ? json_string_value(v) : str_or_null(v, "content");
        int32_t id = s ? tokenizer_token_id(t, s) : -1;
        if (id >= 0) t->flags[id] |= TOK_SPECIAL;
    }
    json_decref(cfg);

    path = path_join(dir, "generation_config.json");
    if (path_exists(path)) {
        json_t *gen = json_load_path(path);
        free(path);
        if (!gen) return -1;
        const json_t *e = json_object_get(gen, "eos_token_id");
        if (json_is_integer(e)) add_eos(t, (int32_t)json_integer_value(e));
        for (size_t i = 0; json_is_array(e) && i < json_array_size(e); i++)
            if (json_is_integer(json_array_get(e, i)))
                add_eos(t, (int32_t)json_integer_value(json_array_get(e, i)));
        const json_t *b = json_object_get(gen, "bos_token_id");
        if (t->bos < 0 && json_is_integer(b)) t->bos = (int32_t)json_integer_value(b);
        json_decref(gen);
    } else {
        free(path);
    }
    return 0;
}

static int load_tokenizer_json(tokenizer *t, const json_t *root, tok_span vocab, tok_span merges) {
    if (!json_is_object(root)) {
        kiln_error(TJ "the top level must be an object");
        return -1;
    }
    if (load_model(t, json_object_get(root, "model"), vocab, merges) < 0) return -1;
    if (load_added(t, json_object_get(root, "added_tokens")) < 0) return -1;
    if (add_normalizer(t, json_object_get(root, "normalizer")) < 0) return -1;
    if (add_pretokenizer(t, json_object_get(root, "pre_tokenizer")) < 0) return -1;
    if (add_post_processor(t, json_object_get(root, "post_processor")) < 0) return -1;
    if (add_decoder(t, json_object_get(root, "decoder")) < 0) return -1;
    return 0;
}

tokenizer *tokenizer_load_json_dir(const char *dir) {
    char *path = path_join(dir, "tokenizer.json");
    if (!path_exists(path)) {
        kiln_error("%s: no tokenizer.json in this folder", dir);
        free(path);
        return NULL;
    }
    char *data;
    size_t len;
    if (read_file(path, &data, &len) < 0) {
        free(path);
        return NULL;
    }
    tok_span vocab, merges;
    json_t *root = tokjson_load(data, len, &vocab, &merges);
    tokenizer *t = NULL;
    if (root) {
        t = tokenizer_alloc();
        if (load_tokenizer_json(t, root, vocab, merges) < 0 ||
            load_configs(t, dir, json_object_get(root, "post_processor")) < 0) {
            tokenizer_free(t);
            t = NULL;
        }
    }
    if (!t) kiln_error_prefix("%s: ", dir);
    free(data);
    json_decref(root);
    free(path);
    return t;
}
