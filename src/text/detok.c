/*
 * detok.c — token ids back to text. tokenizer_decode runs tokenizer.json's decoder chain
 * (ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip) over the whole list of tokens as
 * Hugging Face's decode does, then clean_up_tokenization_spaces if the config asks for it.
 * The streaming detokenizer runs the same chain on one token at a time (O(1) per token),
 * keeps incomplete UTF-8 until it completes, and holds back the few characters that a
 * clean-up rule might still change.
 */
#include "text/tok_internal.h"

#include <stdlib.h>
#include <string.h>

static const char REPLACEMENT_CHAR[] = "\xEF\xBF\xBD";

/* Length of the valid sequence at s (1-4), or -(bytes of its maximal invalid subpart), or 0
 * when the bytes so far are a valid but incomplete prefix. */
static int utf8_step(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    int need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return -1;
    }
    for (int k = 1; k < need; k++) {
        if ((size_t)k >= n) return 0;
        unsigned char lim_lo = k == 1 ? lo : 0x80, lim_hi = k == 1 ? hi : 0xBF;
        if (s[k] < lim_lo || s[k] > lim_hi) return -k;
    }
    return need;
}

/* Appends bytes as text; invalid sequences become U+FFFD (one per maximal subpart, as
 * from_utf8_lossy and TextDecoder do). With keep_tail, an incomplete sequence at the end is
 * not written; its length is returned. */
static size_t append_lossy(tbuf *out, const char *s, size_t n, bool keep_tail) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        int step = utf8_step(u + i, n - i);
        if (step > 0) {
            tbuf_put(out, s + i, (size_t)step);
            i += (size_t)step;
        } else if (step == 0) {
            if (keep_tail) return n - i;
            tbuf_put(out, REPLACEMENT_CHAR, 3);
            return 0;
        } else {
            tbuf_put(out, REPLACEMENT_CHAR, 3);
            i += (size_t)-step;
        }
    }
    return 0;
}

static int byte_token(const char *s, size_t n) { /* "<0xAB>" -> 0xAB, else -1 */
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int k = 3; k < 5; k++) {
        char c = s[k];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                       : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static void replace_all(tbuf *out, const char *s, size_t n, const char *pat, const char *with) {
    size_t pn = strlen(pat), wn = strlen(with), i = 0;
    for (;;) {
        const char *hit = pn ? memmem(s + i, n - i, pat, pn) : NULL;
        if (!hit) break;
        tbuf_put(out, s + i, (size_t)(hit - (s + i)));
        tbuf_put(out, with, wn);
        i = (size_t)(hit - s) + pn;
    }
    tbuf_put(out, s + i, n - i);
}

/* Strip: up to `start` leading and `stop` trailing copies of one character. */
static void strip_chars(tbuf *out, const char *s, size_t n, const char *ch, int start, int stop) {
    size_t cn = strlen(ch), a = 0, b = n;
    for (int k = 0; k < start && b - a >= cn && !memcmp(s + a, ch, cn); k++) a += cn;
    for (int k = 0; k < stop && b - a >= cn && !memcmp(s + b - cn, ch, cn); k++) b -= cn;
    tbuf_put(out, s + a, b - a);
}

/* Bytes of a byte-level token (characters outside the table keep their UTF-8 bytes). */
static void byte_level_bytes(tbuf *out, const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        int len;
        int32_t cp = utf8_decode(s + i, &len);
        int b = bytelevel_unmap(cp);
        if (b >= 0)
            tbuf_putc(out, (char)b);
        else
            tbuf_put(out, s + i, (size_t)len);
        i += (size_t)len;
    }
}

/* ---- whole-list decoding ---- */
typedef struct toklist {
    tbuf *items;
    bool *added; /* added tokens pass through ByteLevel untouched */
    size_t n, cap;
} toklist;

static void list_free(toklist *l) {
    for (size_t i = 0; i < l->n; i++) tbuf_free(&l->items[i]);
    free(l->items);
    free(l->added);
}

static void list_push(toklist *l, const char *s, size_t n, bool added) {
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->items = xrealloc(l->items, l->cap * sizeof *l->items);
        l->added = xrealloc(l->added, l->cap * sizeof *l->added);
    }
    l->items[l->n] = (tbuf){0};
    tbuf_put(&l->items[l->n], s, n);
    l->added[l->n++] = added;
}

static toklist apply_decoder(const decoder *d, toklist in) {
    toklist out = {0};
    tbuf acc = {0};
    int bytes_pending = 0;
    for (size_t i = 0; i < in.n; i++) {
        const char *s = in.items[i].p ? in.items[i].p : "";
        size_t n = in.items[i].n;
        tbuf one = {0};
        switch (d->kind) {
        case DEC_BYTE_LEVEL: /* consecutive tokens are joined, then read as UTF-8 */
            if (in.added[i]) {
                if (acc.n) {
                    append_lossy(&one, acc.p, acc.n, false);
                    list_push(&out, one.p ? one.p : "", one.n, false);
                    one.n = acc.n = 0;
                }
                list_push(&out, s, n, true);
            } else {
                byte_level_bytes(&acc, s, n);
            }
            break;
        case DEC_BYTE_FALLBACK: {
            int b = byte_token(s, n);
            if (b >= 0) {
                tbuf_putc(&acc, (char)b);
                bytes_pending++;
                break;
            }
            if (bytes_pending) {
                if (utf8_check(acc.p, acc.n) == acc.n)
                    list_push(&out, acc.p, acc.n, false);
                else /* Hugging Face: one U+FFFD per byte of an invalid run */
                    for (int k = 0; k < bytes_pending; k++)
                        list_push(&out, REPLACEMENT_CHAR, 3, false);
                acc.n = 0;
                bytes_pending = 0;
            }
            list_push(&out, s, n, in.added[i]);
            break;
        }
        case DEC_FUSE:
            tbuf_put(&acc, s, n);
            bytes_pending = 1;
            break;
        case DEC_REPLACE:
            replace_all(&one, s, n, d->pattern, d->content);
            list_push(&out, one.p ? one.p : "", one.n, in.added[i]);
            break;
        case DEC_METASPACE:
            replace_all(&one, s, n, d->pattern, " ");
            if (i == 0 && d->prepend && one.n && one.p[0] == ' ')
                list_push(&out, one.p + 1, one.n - 1, in.added[i]);
            else
                list_push(&out, one.p ? one.p : "", one.n, in.added[i]);
            break;
        case DEC_STRIP:
            strip_chars(&one, s, n, d->content, d->start, d->stop);
            list_push(&out, one.p ? one.p : "", one.n, in.added[i]);
            break;
        }
        tbuf_free(&one);
    }
    if (d->kind == DEC_BYTE_LEVEL && acc.n) {
        tbuf one = {0};
        append_lossy(&one, acc.p, acc.n, false);
        list_push(&out, one.p ? one.p : "", one.n, false);
        tbuf_free(&one);
    } else if (d->kind == DEC_BYTE_FALLBACK && bytes_pending) {
        if (utf8_check(acc.p, acc.n) == acc.n)
            list_push(&out, acc.p, acc.n, false);
        else
            for (int k = 0; k < bytes_pending; k++) list_push(&out, REPLACEMENT_CHAR, 3, false);
    } else if (d->kind == DEC_FUSE) {
        list_push(&out, acc.p ? acc.p : "", acc.n, false);
    }
    tbuf_free(&acc);
    list_free(&in);
    return out;
}

static const char *const CLEANUP[][2] = {
    {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
    {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};

/* transformers' clean_up_tokenization: the replacements in order, each over the whole text. */
static void clean_up(tbuf *text) {
    for (size_t k = 0; k < ARRAY_LEN(CLEANUP); k++) {
        if (!text->n || !memmem(text->p, text->n, CLEANUP[k][0], strlen(CLEANUP[k][0]))) continue;
        tbuf out = {0};
        replace_all(&out, text->p, text->n, CLEANUP[k][0], CLEANUP[k][1]);
        tbuf_free(text);
        *text = out;
    }
}

static bool keep_token(const tokenizer *t, int32_t id, bool skip_special) {
    if (id < 0 || id >= t->n_vocab || !t->text[id]) return false; /* unknown ids are skipped */
    return !(skip_special && (t->flags[id] & TOK_SPECIAL));
}

char *tokenizer_decode(const tokenizer *t, const int32_t *ids, size_t n, bool skip_special) {
    if (t->llama2c) return llama2c_decode(t, ids, n, skip_special);
    toklist list = {0};
    for (size_t i = 0; i < n; i++)
        if (keep_token(t, ids[i], skip_special))
            list_push(&list, t->text[ids[i]], t->text_len[ids[i]], t->flags[ids[i]] & TOK_ADDED);
    tbuf text = {0};
    if (t->n_decoders == 0) { /* no decoder: tokens joined by spaces */
        for (size_t i = 0; i < list.n; i++) {
            if (i) tbuf_putc(&text, ' ');
            tbuf_put(&text, list.items[i].p, list.items[i].n);
        }
        list_free(&list);
    } else {
        for (size_t k = 0; k < t->n_decoders; k++) list = apply_decoder(&t->decoders[k], list);
        for (size_t i = 0; i < list.n; i++) tbuf_put(&text, list.items[i].p, list.items[i].n);
        list_free(&list);
    }
    if (t->clean_up_spaces) clean_up(&text);
    if (!text.p) tbuf_put(&text, "", 0);
    return text.p;
}

/* ---- streaming ---- */
struct detokenizer {
    const tokenizer *t;
    bool skip_special, first, after_bos;
    tbuf pending; /* bytes of an incomplete UTF-8 sequence */
    tbuf held;    /* text a clean-up rule may still change */
    tbuf out, piece, tmp;
};

detokenizer *detokenizer_new(const tokenizer *t, bool skip_special) {
    detokenizer *d = xcalloc(1, sizeof *d);
    d->t = t;
    d->skip_special = skip_special;
    d->first = true;
    return d;
}

void detokenizer_free(detokenizer *d) {
    if (!d) return;
    tbuf_free(&d->pending);
    tbuf_free(&d->held);
    tbuf_free(&d->out);
    tbuf_free(&d->piece);
    tbuf_free(&d->tmp);
    free(d);
}

/* The decoder chain on one token: its bytes (byte tokens raw, not yet read as UTF-8). */
static void token_piece(detokenizer *d, int32_t id, tbuf *piece) {
    const tokenizer *t = d->t;
    bool added = t->flags[id] & TOK_ADDED, fused = false;
    piece->n = 0;
    tbuf_put(piece, t->text[id], t->text_len[id]);
    for (size_t k = 0; k < t->n_decoders; k++) {
        const decoder *dec = &t->decoders[k];
        tbuf *tmp = &d->tmp;
        tmp->n = 0;
        switch (dec->kind) {
        case DEC_BYTE_LEVEL:
            if (added) continue;
            byte_level_bytes(tmp, piece->p, piece->n);
            break;
        case DEC_BYTE_FALLBACK: {
            int b = byte_token(piece->p, piece->n);
            if (b < 0) continue;
            tbuf_putc(tmp, (char)b);
            break;
        }
        case DEC_FUSE:
            fused = true;
            continue;
        case DEC_REPLACE:
            replace_all(tmp, piece->p, piece->n, dec->pattern, dec->content);
            break;
        case DEC_METASPACE:
            replace_all(tmp, piece->p, piece->n, dec->pattern, " ");
            if (d->first && dec->prepend && tmp->n && tmp->p[0] == ' ') {
                memmove(tmp->p, tmp->p + 1, tmp->n - 1);
                tmp->n--;
            }
            break;
        case DEC_STRIP: /* after Fuse it only touches the start of the whole text */
            if (fused && !d->first) continue;
            strip_chars(tmp, piece->p, piece->n, dec->content, dec->start, fused ? 0 : dec->stop);
            break;
        }
        tbuf swap = *piece;
        *piece = *tmp;
        *tmp = swap;
    }
}

/* Longest tail of s that could still grow into a clean-up pattern. */
static size_t cleanup_tail(const char *s, size_t n) {
    for (size_t k = n < 4 ? n : 3; k > 0; k--)
        for (size_t p = 0; p < ARRAY_LEN(CLEANUP); p++) {
            size_t pl = strlen(CLEANUP[p][0]);
            if (pl > k && !memcmp(s + n - k, CLEANUP[p][0], k)) return k;
        }
    return 0;
}

static void emit_text(detokenizer *d, const char *s, size_t n, bool final) {
    if (!d->t->clean_up_spaces) {
        tbuf_put(&d->out, s, n);
        return;
    }
    tbuf_put(&d->held, s, n);
    clean_up(&d->held);
    size_t keep = final ? 0 : cleanup_tail(d->held.p ? d->held.p : "", d->held.n);
    tbuf_put(&d->out, d->held.p, d->held.n - keep);
    memmove(d->held.p, d->held.p + d->held.n - keep, keep);
    d->held.n = keep;
}

const char *detokenizer_push(detokenizer *d, int32_t id) {
    d->out.n = 0;
    tbuf_put(&d->out, "", 0);
    const tokenizer *t = d->t;
    if (!keep_token(t, id, d->skip_special)) return d->out.p;
    if (t->llama2c) { /* run.c: a leading space after BOS is dropped */
        const char *s = t->text[id];
        size_t n = t->text_len[id];
        d->piece.n = 0;
        int b = byte_token(s, n);
        if (b >= 0) {
            tbuf_putc(&d->piece, (char)b);
        } else {
            if ((d->first || d->after_bos) && n && s[0] == ' ') s++, n--;
            tbuf_put(&d->piece, s, n);
        }
        d->after_bos = id == t->bos;
    } else {
        token_piece(d, id, &d->piece);
    }
    d->first = false;
    tbuf_put(&d->pending, d->piece.p, d->piece.n);
    tbuf text = {0};
    size_t tail = append_lossy(&text, d->pending.p, d->pending.n, true);
    memmove(d->pending.p, d->pending.p + d->pending.n - tail, tail);
    d->pending.n = tail;
    emit_text(d, text.p ? text.p : "", text.n, false);
    tbuf_free(&text);
    return d->out.p;
}

const char *detokenizer_flush(detokenizer *d) {
    d->out.n = 0;
    tbuf_put(&d->out, "", 0);
    tbuf text = {0};
    if (d->pending.n) append_lossy(&text, d->pending.p, d->pending.n, false);
    d->pending.n = 0;
    emit_text(d, text.p ? text.p : "", text.n, true);
    tbuf_free(&text);
    return d->out.p;
}
