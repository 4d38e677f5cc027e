/*
 * normalize.c — tokenizer.json normalizers (NFC/NFD/NFKC/NFKD through utf8proc, Lowercase,
 * Strip, StripAccents, Prepend, Replace), applied in order to one piece of text. A Sequence
 * was flattened into this list when the tokenizer was loaded.
 */
#include "text/tok_internal.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static int utf8proc_form(enum norm_kind kind, const char *s, size_t n, tbuf *out) {
    int opts = UTF8PROC_STABLE;
    if (kind == NORM_NFC || kind == NORM_NFKC) opts |= UTF8PROC_COMPOSE;
    if (kind == NORM_NFD || kind == NORM_NFKD) opts |= UTF8PROC_DECOMPOSE;
    if (kind == NORM_NFKC || kind == NORM_NFKD) opts |= UTF8PROC_COMPAT;
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t got = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst,
                                        (utf8proc_option_t)opts);
    if (got < 0) {
        kiln_error("unicode normalization failed: %s", utf8proc_errmsg(got));
        return -1;
    }
    tbuf_put(out, dst, (size_t)got);
    free(dst);
    return 0;
}

/* ---- NFC's quick path: characters that composition can never touch ----
 * A character is inert when NFC leaves it alone, its combining class is 0 and it can never
 * be the second half of a composition. Text splits safely in front of an inert character, so
 * only short stretches around the others need utf8proc. */
static uint8_t nfc_inert_bmp[65536 / 8];
static pthread_once_t nfc_once = PTHREAD_ONCE_INIT;

static bool can_be_second(const utf8proc_property_t *p) {
    return p->comb_index != UINT16_MAX && p->comb_index >= 0x8000;
}

static bool compute_inert(int32_t c) {
    if ((c >= 0x1100 && c <= 0x11FF) || (c >= 0xA960 && c <= 0xA97F) ||
        (c >= 0xD7B0 && c <= 0xD7FF))
        return false; /* Hangul jamo compose algorithmically */
    if (c >= 0xD800 && c <= 0xDFFF) return false;
    const utf8proc_property_t *p = utf8proc_get_property(c);
    if (p->combining_class != 0 || can_be_second(p)) return false;
    if (p->decomp_seqindex == UINT16_MAX || p->decomp_type != 0) return true;
    char enc[4];
    int len = utf8_encode(c, enc);
    tbuf out = {0};
    bool same = utf8proc_form(NORM_NFC, enc, (size_t)len, &out) == 0 && out.n == (size_t)len &&
                !memcmp(out.p, enc, (size_t)len);
    tbuf_free(&out);
    return same;
}

static void build_nfc_table(void) {
    for (int32_t c = 0; c < 65536; c++)
        if (c < 0x300 || compute_inert(c)) nfc_inert_bmp[c >> 3] |= (uint8_t)(1u << (c & 7));
}

static bool nfc_inert(int32_t c) {
    if (c < 0x300) return true;
    if (c < 65536) return nfc_inert_bmp[c >> 3] >> (c & 7) & 1;
    const utf8proc_property_t *p = utf8proc_get_property(c);
    return p->combining_class == 0 && !can_be_second(p) && p->decomp_seqindex == UINT16_MAX;
}

static int nfc(const char *s, size_t n, tbuf *out) {
    pthread_once(&nfc_once, build_nfc_table);
    size_t i = 0, copied = 0, prev = 0; /* prev: start of the character before i */
    while (i < n) {
        int len;
        int32_t c = utf8_decode(s + i, &len);
        if (nfc_inert(c)) {
            prev = i;
            i += (size_t)len;
            continue;
        }
        size_t seg = i > copied ? prev : i; /* the starter it may compose with */
        size_t j = i + (size_t)len;
        while (j < n) {
            int l2;
            if (nfc_inert(utf8_decode(s + j, &l2))) break;
            j += (size_t)l2;
        }
        tbuf_put(out, s + copied, seg - copied);
        if (utf8proc_form(NORM_NFC, s + seg, j - seg, out) < 0) return -1;
        copied = prev = i = j;
    }
    tbuf_put(out, s + copied, n - copied);
    return 0;
}

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
    if (kind == NORM_NFC) return nfc(s, n, out);
    return utf8proc_form(kind, s, n, out);
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

static bool is_letter(int32_t c) {
    utf8proc_category_t cat = utf8proc_category(c);
    return cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
}

/* Rust's str::to_lowercase beyond the simple mapping: İ becomes i + combining dot, and a
 * capital sigma at the end of a word becomes the final sigma. */
static bool lowercase_special(const char *s, size_t n, size_t at, int32_t c, tbuf *out) {
    if (c == 0x130) {
        tbuf_put(out, "i\xcc\x87", 3);
        return true;
    }
    if (c != 0x3A3 || at == 0) return false;
    size_t k = at - 1;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
    int len;
    if (!is_letter(utf8_decode(s + k, &len))) return false;
    size_t next = at + 2;
    if (next < n && is_letter(utf8_decode(s + next, &len))) return false;
    tbuf_put(out, "\xcf\x82", 2); /* ς */
    return true;
}

static void map_chars(enum norm_kind kind, const char *s, size_t n, tbuf *out) {
    tbuf_reserve(out, n);
    for (size_t i = 0; i < n;) {
        int len;
        int32_t c = utf8_decode(s + i, &len);
        if (kind == NORM_LOWERCASE && lowercase_special(s, n, i, c, out)) {
            i += (size_t)len;
            continue;
        }
        i += (size_t)len;
        if (kind == NORM_STRIP_ACCENTS) {
            utf8proc_category_t cat = utf8proc_category(c);
            if (cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_MC ||
                cat == UTF8PROC_CATEGORY_ME)
                continue; /* marks, as Rust's is_combining_mark */
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
