/*
 * pretok.c — tokenizer.json pre-tokenizers: they cut a normalized piece of text into words
 * (Split, ByteLevel, Metaspace, Digits, Punctuation, Whitespace, WhitespaceSplit) and may
 * rewrite them (ByteLevel's byte characters, Metaspace's ▁). Steps run depth-first: each
 * word a step produces goes straight to the next step and finally to the BPE model, so no
 * list of all words is ever built.
 */
#include "text/tok_internal.h"

#include <string.h>
#include <utf8proc.h>

/* ---- GPT-2's byte <-> character table ---- */
static char byte_chars[256][3];
static uint8_t byte_char_len[256];
static int16_t char_to_byte[324];
static pthread_once_t byte_table_once = PTHREAD_ONCE_INIT;

static bool byte_is_printable(int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

static void build_byte_table(void) {
    int extra = 0;
    for (int i = 0; i < 324; i++) char_to_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        int cp = byte_is_printable(b) ? b : 256 + extra++;
        byte_char_len[b] = (uint8_t)utf8_encode(cp, byte_chars[b]);
        char_to_byte[cp] = (int16_t)b;
    }
}

void bytelevel_map(const char *s, size_t n, tbuf *out) {
    pthread_once(&byte_table_once, build_byte_table);
    tbuf_reserve(out, 2 * n);
    char *o = out->p + out->n;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        o[0] = byte_chars[b][0];
        o[1] = byte_chars[b][1];
        o += byte_char_len[b];
    }
    out->n = (size_t)(o - out->p);
    out->p[out->n] = 0;
}

int bytelevel_unmap(int32_t cp) {
    pthread_once(&byte_table_once, build_byte_table);
    return cp >= 0 && cp < 324 ? char_to_byte[cp] : -1;
}

/* ---- splitting with Hugging Face's delimiter behaviours ---- */
typedef struct splitter {
    encode_state *st;
    size_t step;
    const char *s;
    bool at_start;
    enum split_behavior behavior;
    bool has_pending, pending_match, prev_match;
    size_t ps, pe;
    bool map_bytes; /* ByteLevel: rewrite each piece into byte characters */
    int failed;
} splitter;

static int run_step(encode_state *st, size_t k, const char *s, size_t n, bool at_start);

static void emit(splitter *sp, size_t a, size_t b) {
    if (sp->failed || b <= a) return;
    if (sp->map_bytes) {
        tbuf *mapped = &sp->st->scratch[2 * sp->step + 1];
        mapped->n = 0;
        bytelevel_map(sp->s + a, b - a, mapped);
        if (run_step(sp->st, sp->step + 1, mapped->p, mapped->n, sp->at_start && a == 0) < 0)
            sp->failed = 1;
        return;
    }
    if (run_step(sp->st, sp->step + 1, sp->s + a, b - a, sp->at_start && a == 0) < 0)
        sp->failed = 1;
}

/* Feeds one segment [a, b) (a delimiter when is_match) in order. */
static void split_push(splitter *sp, size_t a, size_t b, bool is_match) {
    if (b <= a) return;
    switch (sp->behavior) {
    case SPLIT_REMOVED:
        if (!is_match) emit(sp, a, b);
        break;
    case SPLIT_ISOLATED:
        emit(sp, a, b);
        break;
    case SPLIT_MERGED_WITH_PREVIOUS: /* a delimiter joins the piece before it */
        if (is_match && !sp->prev_match && sp->has_pending) {
            sp->pe = b;
        } else {
            if (sp->has_pending) emit(sp, sp->ps, sp->pe);
            sp->has_pending = true;
            sp->ps = a;
            sp->pe = b;
        }
        break;
    case SPLIT_CONTIGUOUS: /* runs of delimiters become one piece */
        if (is_match == sp->prev_match && sp->has_pending) {
            sp->pe = b;
        } else {
            if (sp->has_pending) emit(sp, sp->ps, sp->pe);
            sp->has_pending = true;
            sp->ps = a;
            sp->pe = b;
        }
        break;
    case SPLIT_MERGED_WITH_NEXT: /* a delimiter joins the (non-delimiter) piece after it */
        if (sp->has_pending) {
            sp->has_pending = false;
            if (!is_match) {
                emit(sp, sp->ps, b);
                break;
            }
            emit(sp, sp->ps, sp->pe);
        }
        if (is_match) {
            sp->has_pending = true;
            sp->ps = a;
            sp->pe = b;
        } else {
            emit(sp, a, b);
        }
        break;
    }
    sp->prev_match = is_match;
}

static int split_finish(splitter *sp) {
    if (sp->has_pending) emit(sp, sp->ps, sp->pe);
    sp->has_pending = false;
    return sp->failed ? -1 : 0;
}

static splitter splitter_start(encode_state *st, size_t k, const char *s, bool at_start,
                               enum split_behavior behavior) {
    return (splitter){.st = st, .step = k, .s = s, .at_start = at_start, .behavior = behavior};
}

/* Regex matches are delimiters (or, inverted, the kept parts). */
static int split_regex(splitter *sp, const pcre2_code *re, bool invert, size_t n) {
    size_t pos = 0, prev = 0;
    while (pos <= n) {
        size_t ms, me;
        int rc = tok_regex_next(re, sp->st->md, sp->s, n, pos, &ms, &me);
        if (rc < 0) return -1;
        if (rc == 0) break;
        if (ms > prev) split_push(sp, prev, ms, invert);
        split_push(sp, ms, me, !invert);
        prev = me;
        /* an empty match moves on by one character, as Oniguruma's find_iter does */
        pos = me > ms ? me : me + (me < n ? (size_t)utf8_len((unsigned char)sp->s[me]) : 1);
        if (sp->failed) return -1;
    }
    if (prev < n) split_push(sp, prev, n, invert);
    return split_finish(sp);
}

static bool is_punctuation(int32_t c) {
    if (c < 0x80)
        return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
               (c >= '{' && c <= '~');
    utf8proc_category_t cat = utf8proc_category(c);
    return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

/* Every character for which pred holds is a delimiter of its own; the runs between them are
 * single pieces (tokenizers' Pattern for Fn(char) -> bool). */
static int split_chars(splitter *sp, bool (*pred)(int32_t), size_t n) {
    size_t run = 0; /* start of the current run of other characters */
    for (size_t i = 0; i < n;) {
        int len;
        int32_t c = utf8_decode(sp->s + i, &len);
        if (pred(c)) {
            split_push(sp, run, i, false);
            split_push(sp, i, i + (size_t)len, true);
            run = i + (size_t)len;
        }
        i += (size_t)len;
    }
    split_push(sp, run, n, false);
    return split_finish(sp);
}

static bool is_ascii_digit(int32_t c) {
    return c >= '0' && c <= '9';
}

static int metaspace(encode_state *st, size_t k, const pretokenizer *p, const char *s, size_t n,
                     bool at_start) {
    tbuf *buf = &st->scratch[2 * k];
    buf->n = 0;
    size_t rlen = strlen(p->replacement);
    /* after spaces become the replacement, does the text start with it? */
    bool starts = s[0] == ' ' || (n >= rlen && !memcmp(s, p->replacement, rlen));
    if (!starts && (p->prepend == PREPEND_ALWAYS || (p->prepend == PREPEND_FIRST && at_start)))
        tbuf_put(buf, p->replacement, rlen);
    tbuf_reserve(buf, n * rlen);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ')
            tbuf_put(buf, p->replacement, rlen);
        else
            tbuf_putc(buf, s[i]);
    }
    if (!p->split) return run_step(st, k + 1, buf->p, buf->n, at_start);
    splitter sp = splitter_start(st, k, buf->p, at_start, SPLIT_MERGED_WITH_NEXT);
    for (size_t i = 0; i < buf->n;) {
        bool hit = buf->n - i >= rlen && !memcmp(buf->p + i, p->replacement, rlen);
        size_t len = hit ? rlen : (size_t)utf8_len((unsigned char)buf->p[i]);
        split_push(&sp, i, i + len, hit);
        i += len;
    }
    return split_finish(&sp);
}

/* ByteLevel: optional prefix space, optional GPT-2 regex split, then bytes -> characters. */
static int byte_level(encode_state *st, size_t k, const pretokenizer *p, const char *s, size_t n,
                      bool at_start) {
    if (p->add_prefix_space && s[0] != ' ') {
        tbuf *pre = &st->scratch[2 * k];
        pre->n = 0;
        tbuf_putc(pre, ' ');
        tbuf_put(pre, s, n);
        s = pre->p;
        n = pre->n;
    }
    splitter sp = splitter_start(st, k, s, at_start, SPLIT_ISOLATED);
    sp.map_bytes = true;
    if (!p->re) {
        emit(&sp, 0, n);
        return split_finish(&sp);
    }
    return split_regex(&sp, p->re, false, n);
}

static int run_step(encode_state *st, size_t k, const char *s, size_t n, bool at_start) {
    if (n == 0) return 0; /* empty pieces are dropped, as Hugging Face does */
    const tokenizer *t = st->t;
    if (k == t->n_pretoks) return bpe_encode_word(st, s, n);
    const pretokenizer *p = &t->pretoks[k];
    splitter sp;
    switch (p->kind) {
    case PRE_SPLIT:
        sp = splitter_start(st, k, s, at_start, p->behavior);
        return split_regex(&sp, p->re, p->invert, n);
    case PRE_WHITESPACE: /* keeps the matches of \w+|[^\w\s]+ */
        sp = splitter_start(st, k, s, at_start, SPLIT_REMOVED);
        return split_regex(&sp, p->re, true, n);
    case PRE_WHITESPACE_SPLIT:
        sp = splitter_start(st, k, s, at_start, SPLIT_REMOVED);
        return split_chars(&sp, tok_is_whitespace, n);
    case PRE_DIGITS:
        sp = splitter_start(st, k, s, at_start,
                            p->individual_digits ? SPLIT_ISOLATED : SPLIT_CONTIGUOUS);
        return split_chars(&sp, is_ascii_digit, n);
    case PRE_PUNCTUATION:
        sp = splitter_start(st, k, s, at_start, p->behavior);
        return split_chars(&sp, is_punctuation, n);
    case PRE_METASPACE:
        return metaspace(st, k, p, s, n, at_start);
    case PRE_BYTE_LEVEL:
        return byte_level(st, k, p, s, n, at_start);
    }
    return 0;
}

int pretokenize_and_encode(encode_state *st, const char *s, size_t n, bool at_start) {
    return run_step(st, 0, s, n, at_start);
}
