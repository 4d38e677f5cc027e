/*
 * tok_encode.c — text to token ids, the way Hugging Face's tokenizer(text) does it: cut the
 * text around added tokens, normalize each remaining section, cut again around added tokens
 * that match normalized text, pre-tokenize, run the BPE model, then put the post-processor's
 * special tokens around the result. Also the tokenizer's small public accessors.
 */
#include "text/tok_internal.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

tokenizer *tokenizer_load(const char *path) {
    if (is_directory(path)) return tokenizer_load_json_dir(path);
    if (!path_exists(path)) {
        kiln_error("%s: no such tokenizer (expected a model folder or a llama2.c tokenizer file)",
                   path);
        return NULL;
    }
    return tokenizer_load_llama2c(path);
}

tokenizer *tokenizer_alloc(void) {
    tokenizer *t = xcalloc(1, sizeof *t);
    t->unk_id = -1;
    t->bos = -1;
    for (int i = 0; i < 256; i++) t->byte_ids[i] = -1;
    word_cache_init(&t->cache);
    return t;
}

void tokenizer_set_vocab_size(tokenizer *t, int32_t n) {
    if (n <= t->n_vocab) return;
    t->text = xrealloc(t->text, (size_t)n * sizeof *t->text);
    t->text_len = xrealloc(t->text_len, (size_t)n * sizeof *t->text_len);
    t->flags = xrealloc(t->flags, (size_t)n);
    for (int32_t i = t->n_vocab; i < n; i++) {
        t->text[i] = NULL;
        t->text_len[i] = 0;
        t->flags[i] = 0;
    }
    t->n_vocab = n;
}

void tokenizer_free(tokenizer *t) {
    if (!t) return;
    for (int32_t i = 0; i < t->n_vocab; i++) free(t->text[i]);
    free(t->text);
    free(t->text_len);
    free(t->flags);
    strmap_free(&t->vocab);
    pairmap_free(&t->merges);
    free(t->subword_prefix);
    free(t->word_suffix);
    word_cache_free(&t->cache);
    for (size_t i = 0; i < t->n_norms; i++) {
        free(t->norms[i].text);
        free(t->norms[i].pattern);
        pcre2_code_free(t->norms[i].re);
    }
    free(t->norms);
    for (size_t i = 0; i < t->n_pretoks; i++) pcre2_code_free(t->pretoks[i].re);
    free(t->pretoks);
    for (size_t i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    strmap_free(&t->added_index);
    added_trie_free(&t->trie_raw);
    added_trie_free(&t->trie_norm);
    free(t->post_prefix.p);
    free(t->post_suffix.p);
    for (size_t i = 0; i < t->n_decoders; i++) {
        free(t->decoders[i].pattern);
        free(t->decoders[i].content);
    }
    free(t->decoders);
    free(t->eos.p);
    free(t);
}

void encode_state_init(encode_state *st, const tokenizer *t, ivec *out) {
    memset(st, 0, sizeof *st);
    st->t = t;
    st->out = out;
    st->md = pcre2_match_data_create(4, NULL);
    st->n_scratch = 2 * t->n_pretoks;
    st->scratch = xcalloc(st->n_scratch + 1, sizeof *st->scratch);
}

void encode_state_free(encode_state *st) {
    pcre2_match_data_free(st->md);
    for (size_t i = 0; i < st->n_scratch; i++) tbuf_free(&st->scratch[i]);
    free(st->scratch);
    tbuf_free(&st->word);
    free(st->syms);
    free(st->heap);
    free(st->word_ids.p);
}

/* ---- cutting around added tokens ---- */
static bool is_word_char(int32_t c) {
    if (c == '_') return true;
    utf8proc_category_t cat = utf8proc_category(c);
    return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_NO) ||
           cat == UTF8PROC_CATEGORY_PC;
}

static bool ends_with_word(const char *s, size_t n) {
    if (n == 0) return false;
    size_t k = n - 1;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
    int len;
    return is_word_char(utf8_decode(s + k, &len));
}

static bool starts_with_word(const char *s, size_t n) {
    int len;
    return n > 0 && is_word_char(utf8_decode(s, &len));
}

static size_t trim_end(const char *s, size_t from, size_t n) { /* new end of s[from..n) */
    while (n > from) {
        size_t k = n - 1;
        while (k > from && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
        int len;
        if (!tok_is_whitespace(utf8_decode(s + k, &len))) break;
        n = k;
    }
    return n;
}

static size_t skip_space(const char *s, size_t i, size_t n) {
    while (i < n) {
        int len;
        if (!tok_is_whitespace(utf8_decode(s + i, &len))) break;
        i += (size_t)len;
    }
    return i;
}

typedef int (*section_fn)(encode_state *st, const char *s, size_t n, bool at_start);

/* Cuts s around the trie's tokens (Hugging Face's AddedVocabulary::find_matches): matched
 * tokens go to the output, the text between them to fn. */
static int split_added(encode_state *st, const added_trie *trie, const char *s, size_t n,
                       bool at_start, section_fn fn) {
    const tokenizer *t = st->t;
    size_t done = 0;                                       /* end of the last token */
    if (trie->n_nodes <= 1) return fn(st, s, n, at_start); /* no tokens of this kind */
    for (size_t i = 0; i < n;) {
        if (!trie->root[(unsigned char)s[i]]) { /* the common case: no token starts here */
            i++;
            continue;
        }
        size_t mlen = 0;
        int32_t k = added_trie_match(trie, s + i, n - i, &mlen);
        if (k < 0) {
            i++;
            continue;
        }
        const added_token *tok = &t->added[k];
        size_t start = i, stop = i + mlen;
        if (tok->single_word &&
            (ends_with_word(s, start) || starts_with_word(s + stop, n - stop))) {
            i = stop; /* the match is consumed but not used */
            continue;
        }
        if (tok->lstrip) start = trim_end(s, done, start);
        if (tok->rstrip) stop = skip_space(s, stop, n);
        if (start > done && fn(st, s + done, start - done, at_start && done == 0) < 0) return -1;
        ivec_push(st->out, tok->id);
        done = i = stop;
    }
    if (done < n) return fn(st, s + done, n - done, at_start && done == 0);
    return 0;
}

static int encode_normalized(encode_state *st, const char *s, size_t n, bool at_start) {
    return pretokenize_and_encode(st, s, n, at_start);
}

static int encode_raw_section(encode_state *st, const char *s, size_t n, bool at_start) {
    const tokenizer *t = st->t;
    if (t->n_norms == 0) return split_added(st, &t->trie_norm, s, n, at_start, encode_normalized);
    tbuf norm = {0};
    int rc = normalize_text(t, s, n, &norm);
    if (rc == 0 && norm.n > 0)
        rc = split_added(st, &t->trie_norm, norm.p, norm.n, at_start, encode_normalized);
    tbuf_free(&norm);
    return rc;
}

int tokenizer_encode(const tokenizer *t, const char *text, size_t len, bool add_special,
                     int32_t **ids, size_t *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    size_t bad = utf8_check(text, len);
    if (bad < len) {
        kiln_error("invalid UTF-8 in text at byte offset %zu (byte 0x%02X)", bad,
                   (unsigned char)text[bad]);
        return -1;
    }
    ivec out = {0};
    int rc;
    if (t->llama2c) {
        if (add_special && t->bos >= 0) ivec_push(&out, t->bos);
        rc = llama2c_encode(t, text, len, &out);
    } else {
        if (add_special) ivec_append(&out, t->post_prefix.p, t->post_prefix.n);
        encode_state st;
        encode_state_init(&st, t, &out);
        rc = split_added(&st, &t->trie_raw, text, len, true, encode_raw_section);
        encode_state_free(&st);
        if (add_special) ivec_append(&out, t->post_suffix.p, t->post_suffix.n);
    }
    if (rc < 0) {
        free(out.p);
        return -1;
    }
    *ids = out.p ? out.p : xmalloc(sizeof(int32_t));
    *n_ids = out.n;
    return 0;
}

/* ---- accessors ---- */
int tokenizer_vocab_size(const tokenizer *t) {
    return t->n_vocab;
}

int32_t tokenizer_bos(const tokenizer *t) {
    return t->bos;
}

size_t tokenizer_eos_ids(const tokenizer *t, const int32_t **ids) {
    *ids = t->eos.p;
    return t->eos.n;
}

bool tokenizer_is_special(const tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && (t->flags[id] & TOK_SPECIAL);
}

const char *tokenizer_token_text(const tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab ? t->text[id] : NULL;
}

int32_t tokenizer_token_id(const tokenizer *t, const char *text) {
    size_t n = strlen(text);
    int32_t id = strmap_get(&t->added_index, text, n);
    return id >= 0 ? id : strmap_get(&t->vocab, text, n);
}
