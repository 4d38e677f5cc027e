/*
 * tok_json.c — a fast path for the two huge values of tokenizer.json, model.vocab and
 * model.merges (Gemma 3's file is 33 MB; jansson needs over a second to build a tree of it).
 * A small scanner finds them and reads them straight into the tokenizer; everything else
 * (a few hundred KB at most) is handed to jansson with those two values blanked out.
 */
#include "text/tok_internal.h"

#include <string.h>

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    return p;
}

/* p at '"': returns the position after the closing quote, or NULL. */
static const char *skip_string(const char *p, const char *end) {
    for (p++; p < end; p++) {
        if (*p == '"') return p + 1;
        if (*p == '\\') p++;
    }
    return NULL;
}

static const char *skip_value(const char *p, const char *end) {
    p = skip_ws(p, end);
    if (p >= end) return NULL;
    if (*p == '"') return skip_string(p, end);
    if (*p != '{' && *p != '[') { /* number, true, false, null */
        while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' &&
               *p != '\r' && *p != '\t')
            p++;
        return p;
    }
    int depth = 0;
    for (; p < end; p++) {
        if (*p == '"') {
            p = skip_string(p, end);
            if (!p) return NULL;
            p--;
        } else if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            if (--depth == 0) return p + 1;
        }
    }
    return NULL;
}

static int hex4(const char *p, const char *end) {
    if (end - p < 4) return -1;
    int v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Reads the string at *pp (at '"') into out; advances *pp past it. */
static int read_string(const char **pp, const char *end, tbuf *out) {
    const char *p = *pp;
    out->n = 0;
    if (p >= end || *p != '"') return -1;
    p++;
    for (;;) {
        const char *q = p;
        while (q < end && *q != '"' && *q != '\\') q++;
        if (q >= end) return -1;
        tbuf_put(out, p, (size_t)(q - p));
        p = q;
        if (*p == '"') break;
        if (end - p < 2) return -1;
        char c = p[1], e;
        p += 2;
        switch (c) {
        case '"':
            e = '"';
            break;
        case '\\':
            e = '\\';
            break;
        case '/':
            e = '/';
            break;
        case 'b':
            e = '\b';
            break;
        case 'f':
            e = '\f';
            break;
        case 'n':
            e = '\n';
            break;
        case 'r':
            e = '\r';
            break;
        case 't':
            e = '\t';
            break;
        case 'u': {
            int cp = hex4(p, end);
            if (cp < 0) return -1;
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) { /* a surrogate pair */
                int lo = end - p >= 6 && p[0] == '\\' && p[1] == 'u' ? hex4(p + 2, end) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF) return -1;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return -1;
            }
            char enc[4];
            tbuf_put(out, enc, (size_t)utf8_encode(cp, enc));
            continue;
        }
        default:
            return -1;
        }
        tbuf_putc(out, e);
    }
    if (!out->p) tbuf_put(out, "", 0);
    *pp = p + 1;
    return 0;
}

/* Scans the object at p (at '{') once, recording where the values of the wanted keys lie
 * ([vs[k], ve[k])); the value of `nest` (if any) is scanned the same way for nest_keys.
 * Returns the end of the object, or NULL when it is malformed. */
static const char *scan_object(const char *p, const char *end, const char *const *keys, size_t n,
                               const char **vs, const char **ve) {
    p = skip_ws(p, end);
    if (p >= end || *p != '{') return NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') return p + 1;
    while (p < end) {
        if (*p != '"') return NULL;
        const char *ks = p + 1, *ke = skip_string(p, end);
        if (!ke) return NULL;
        p = skip_ws(ke, end);
        if (p >= end || *p != ':') return NULL;
        p = skip_ws(p + 1, end);
        const char *v_end = NULL;
        for (size_t k = 0; k < n; k++) {
            size_t klen = strlen(keys[k]);
            if ((size_t)(ke - 1 - ks) != klen || memcmp(ks, keys[k], klen)) continue;
            if (!strcmp(keys[k], "model") && *p == '{') { /* look inside in the same pass */
                static const char *const inner[] = {"vocab", "merges"};
                v_end = scan_object(p, end, inner, 2, vs + n, ve + n);
            } else {
                v_end = skip_value(p, end);
            }
            vs[k] = p;
            ve[k] = v_end;
        }
        if (!v_end) v_end = skip_value(p, end);
        if (!v_end) return NULL;
        p = skip_ws(v_end, end);
        if (p < end && *p == ',')
            p = skip_ws(p + 1, end);
        else if (p < end && *p == '}')
            return p + 1;
        else
            return NULL;
    }
    return NULL;
}

json_t *tokjson_load(const char *data, size_t len, tok_span *vocab, tok_span *merges) {
    const char *end = data + len;
    memset(vocab, 0, sizeof *vocab);
    memset(merges, 0, sizeof *merges);
    static const char *const top[] = {"model"};
    const char *starts[3] = {0}, *ends[3] = {0};
    const char *vs = NULL, *ve = NULL, *gs = NULL, *ge = NULL;
    if (scan_object(data, end, top, 1, starts, ends) && ends[1] && ends[2]) {
        vs = starts[1], ve = ends[1];
        gs = starts[2], ge = ends[2];
    } else if (ends[1] && !starts[2]) {
        vs = starts[1], ve = ends[1];
    }
    /* the rest, with the big values blanked, goes to jansson (which also reports any error) */
    tbuf rest = {0};
    const char *cut[2][2] = {{vs, ve}, {gs, ge}};
    if (gs && vs && gs < vs) {
        cut[0][0] = gs, cut[0][1] = ge;
        cut[1][0] = vs, cut[1][1] = ve;
    }
    const char *p = data;
    for (int k = 0; k < 2; k++) {
        if (!cut[k][0]) continue;
        tbuf_put(&rest, p, (size_t)(cut[k][0] - p));
        const char *blank = *cut[k][0] == '{' ? "{}" : *cut[k][0] == '[' ? "[]" : "null";
        tbuf_put(&rest, blank, strlen(blank));
        p = cut[k][1];
    }
    tbuf_put(&rest, p, (size_t)(end - p));
    json_error_t err;
    json_t *root = json_loadb(rest.p, rest.n, 0, &err);
    tbuf_free(&rest);
    if (!root) {
        kiln_error("tokenizer.json: %s", err.text);
        return NULL;
    }
    if (vs) *vocab = (tok_span){vs, (size_t)(ve - vs)};
    if (gs) *merges = (tok_span){gs, (size_t)(ge - gs)};
    return root;
}

/* Iterates "key": id pairs of the vocab object. 1: one read; 0: done; -1: malformed. */
int tokjson_next_vocab(tok_iter *it, tbuf *key, long long *id) {
    const char *p = skip_ws(it->p, it->end);
    if (p >= it->end) return -1;
    if (*p == '{' && !it->started) {
        it->started = true;
        p = skip_ws(p + 1, it->end);
    } else if (*p == ',' && it->started) {
        p = skip_ws(p + 1, it->end);
    } else if (*p == '}' && it->started) {
        return 0;
    } else {
        return -1;
    }
    if (p < it->end && *p == '}') return 0;
    if (read_string(&p, it->end, key) < 0) return -1;
    p = skip_ws(p, it->end);
    if (p >= it->end || *p != ':') return -1;
    p = skip_ws(p + 1, it->end);
    long long v = 0;
    const char *digits = p;
    while (p < it->end && *p >= '0' && *p <= '9' && p - digits < 12) v = v * 10 + (*p++ - '0');
    if (p == digits ||
        (p < it->end && (*p == '.' || *p == 'e' || *p == 'E' || (*p >= '0' && *p <= '9'))))
        return -1;
    *id = v;
    it->p = p;
    return 1;
}

/* Iterates the merges array: "a b" strings or ["a", "b"] pairs. */
int tokjson_next_merge(tok_iter *it, tbuf *a, tbuf *b) {
    const char *p = skip_ws(it->p, it->end);
    if (p >= it->end) return -1;
    if (*p == '[' && !it->started) {
        it->started = true;
        p = skip_ws(p + 1, it->end);
    } else if (*p == ',' && it->started) {
        p = skip_ws(p + 1, it->end);
    } else if (*p == ']' && it->started) {
        return 0;
    } else {
        return -1;
    }
    if (p < it->end && *p == ']') return 0;
    if (p < it->end && *p == '"') {
        if (read_string(&p, it->end, a) < 0) return -1;
        const char *sp = memchr(a->p, ' ', a->n);
        if (!sp || memchr(sp + 1, ' ', a->n - (size_t)(sp + 1 - a->p))) return -2;
        b->n = 0;
        tbuf_put(b, sp + 1, a->n - (size_t)(sp + 1 - a->p));
        a->n = (size_t)(sp - a->p);
        a->p[a->n] = 0;
    } else if (p < it->end && *p == '[') {
        p = skip_ws(p + 1, it->end);
        if (read_string(&p, it->end, a) < 0) return -2;
        p = skip_ws(p, it->end);
        if (p >= it->end || *p != ',') return -2;
        p = skip_ws(p + 1, it->end);
        if (read_string(&p, it->end, b) < 0) return -2;
        p = skip_ws(p, it->end);
        if (p >= it->end || *p != ']') return -2;
        p++;
    } else {
        return -2;
    }
    it->p = p;
    return 1;
}
