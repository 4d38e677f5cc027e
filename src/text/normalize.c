/*
 * normalize.c — tokenizer.json normalizers (NFC/NFD/NFKC/NFKD through utf8proc, Lowercase,
 * Strip, StripAccents, Prepend, Replace), applied in order to one piece of text. A Sequence
 * was flattened into this list when the tokenizer was loaded.
 */
#include "text/tok_internal.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static bool all_ascii(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80) return false;
    return true;
}

static int unicode_normal_form(enum norm_kind kind, const char *s, size_t n, tbuf *out) {
    if (all_ascii(s, n)) { /* ASCII is in every normal form */
        tbuf_put(out, s, n);
        return 0;
    }
    int opts = UTF8PROC_STABLE;
    if (kind == NORM_NFC || kind == NORM_NFKC) opts |= UTF8PROC_COMPOSE;
    if (kind == NORM_NFD || kind == NORM_NFKD) opts |= UTF8PROC_DECOMPOSE;
    if (kind == NORM_NFKC || kind == NORM_NFKD) opts |= UTF8PROC_COMPAT;
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t got =
        utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst, (utf8proc_option_t)opts);
    if (got < 0) {
        kiln_error("unicode normalization failed: %s", utf8proc_errmsg(got));
        return -1;
    }
    tbuf_put(out, dst, (size_t)got);
    free(dst);
    return 0;
}

/* Rust's char::is_whitespace: Unicode White_Space. */
bool tok_is_whitespace(int32_t c) {
    return (c >= 9 && c <= 13) || c == ' ' || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

static void strip(const normalizer *nm, const char *s, size_t n, tbuf *out) {
    size_t a = 0, b = n;
    while (nm->left && a < b) {
        int len;
        if (!tok_is_whitespace(utf8_decode(s + a, &len))) break;
        a += (size_t)len;
    }
    while (nm->right && b > a) {
        size_t k = b - 1;
        while (k > a && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
        int len;
        if (!tok_is_whitespace(utf8_decode(s + k, &len))) break;
        b = k;
    }
    tbuf_put(out, s + a, b - a);
}

static void map_chars(enum norm_kind kind, const char *s, size_t n, tbuf *out) {
    tbuf_reserve(out, n);
    for (size_t i = 0; i < n;) {
        int len;
        int32_t c = utf8_decode(s + i, &len);
        i += (size_t)len;
        if (kind == NORM_STRIP_ACCENTS) {
            if (utf8proc_category(c) == UTF8PROC_CATEGORY_MN) continue;
        } else {
            c = utf8proc_tolower(c);
        }
        char enc[4];
        tbuf_put(out, enc, (size_t)utf8_encode(c, enc));
    }
}

static int replace(const normalizer *nm, const char *s, size_t n, tbuf *out) {
    size_t clen = strlen(nm->text);
    if (!nm->re) {
        if (nm->pattern_len == 0) {
            tbuf_put(out, s, n);
            return 0;
        }
        size_t i = 0;
        for (;;) {
            const char *hit = memmem(s + i, n - i, nm->pattern, nm->pattern_len);
            if (!hit) break;
            tbuf_put(out, s + i, (size_t)(hit - (s + i)));
            tbuf_put(out, nm->text, clen);
            i = (size_t)(hit - s) + nm->pattern_len;
        }
        tbuf_put(out, s + i, n - i);
        return 0;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(nm->re, NULL);
    size_t i = 0, pos = 0;
    while (pos <= n) {
        size_t ms, me;
        int rc = tok_regex_next(nm->re, md, s, n, pos, &ms, &me);
        if (rc < 0) {
            pcre2_match_data_free(md);
            return -1;
        }
        if (rc == 0) break;
        tbuf_put(out, s + i, ms - i);
        tbuf_put(out, nm->text, clen);
        i = me;
        pos = me > ms ? me : me + (me < n ? (size_t)utf8_len((unsigned char)s[me]) : 1);
    }
    if (i < n) tbuf_put(out, s + i, n - i);
    pcre2_match_data_free(md);
    return 0;
}

static int apply(const normalizer *nm, const char *s, size_t n, tbuf *out) {
    switch (nm->kind) {
    case NORM_NFC:
    case NORM_NFD:
    case NORM_NFKC:
    case NORM_NFKD:
        return unicode_normal_form(nm->kind, s, n, out);
    case NORM_LOWERCASE:
    case NORM_STRIP_ACCENTS:
        map_chars(nm->kind, s, n, out);
        return 0;
    case NORM_STRIP:
        strip(nm, s, n, out);
        return 0;
    case NORM_PREPEND:
        if (n) tbuf_put(out, nm->text, strlen(nm->text)); /* only non-empty text, as HF */
        tbuf_put(out, s, n);
        return 0;
    case NORM_REPLACE:
        return replace(nm, s, n, out);
    }
    return 0;
}

int normalize_text(const tokenizer *t, const char *s, size_t n, tbuf *out) {
    out->n = 0;
    if (t->n_norms == 0) {
        tbuf_put(out, s, n);
        return 0;
    }
    tbuf a = {0}, b = {0};
    tbuf_put(&a, s, n);
    for (size_t i = 0; i < t->n_norms; i++) {
        b.n = 0;
        tbuf_reserve(&b, a.n);
        if (apply(&t->norms[i], a.p, a.n, &b) < 0) {
            tbuf_free(&a);
            tbuf_free(&b);
            return -1;
        }
        tbuf tmp = a;
        a = b;
        b = tmp;
    }
    tbuf_put(out, a.p, a.n);
    tbuf_free(&a);
    tbuf_free(&b);
    return 0;
}
