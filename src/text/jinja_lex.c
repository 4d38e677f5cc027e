/*
 * jinja_lex.c — turns a template's source into tokens the way Jinja2's lexer does with
 * transformers' settings (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False):
 * newlines normalised to \n, one trailing newline dropped, `-` strips all whitespace on its
 * side of a tag, `+` turns lstrip/trim off, comments vanish, {% raw %} is kept as text, and an
 * end delimiter inside open brackets is read as operators (so {{ {'a': 1}}} works).
 */
#include "text/jinja_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lexer {
    arena *ar;
    const char *s;
    size_t n;
    size_t pos;
    int line;
    token *toks;
    size_t ntok, cap;
    char *err;
    size_t errlen;
} lexer;

static int lex_fail(lexer *L, int line, const char *fmt, ...) KILN_PRINTF(3, 4);
static int lex_fail(lexer *L, int line, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(L->err, L->errlen, "line %d: %s", line, msg);
    utf8_sanitize(L->err);
    return -1;
}

static token *push(lexer *L, tok_kind kind, int line, const char *s, size_t len) {
    if (L->ntok == L->cap) {
        L->cap = L->cap ? L->cap * 2 : 256;
        L->toks = xrealloc(L->toks, L->cap * sizeof(token));
    }
    token *t = &L->toks[L->ntok++];
    memset(t, 0, sizeof(*t));
    t->kind = kind;
    t->line = line;
    t->s = s;
    t->len = len;
    return t;
}

static int count_newlines(const char *s, size_t a, size_t b) {
    int n = 0;
    for (size_t i = a; i < b; i++) n += s[i] == '\n';
    return n;
}

/* Whitespace as Python's \s / str.isspace(), decoded at byte I (or before byte END). */
static size_t space_at(const char *s, size_t n, size_t i) {
    int32_t cp;
    size_t k = u8_decode(s, n, i, &cp);
    return py_isspace(cp) ? k : 0;
}

static size_t skip_space(const char *s, size_t n, size_t i) {
    size_t k;
    while (i < n && (k = space_at(s, n, i))) i += k;
    return i;
}

static size_t rstrip_end(const char *s, size_t start, size_t end) {
    while (end > start) {
        size_t st = end - 1;
        while (st > start && ((unsigned char)s[st] & 0xc0) == 0x80) st--;
        if (!space_at(s, end, st)) break;
        end = st;
    }
    return end;
}

/* lstrip_blocks: drop the spaces between the line's start and a block or comment tag. */
static size_t lstrip_end(const char *s, size_t start, size_t end, bool line_starting) {
    size_t lpos = end;
    while (lpos > start && s[lpos - 1] != '\n') lpos--;
    if (lpos == start && !line_starting) return end;
    if (lpos == end) return end;
    for (size_t i = lpos; i < end;) {
        size_t k = space_at(s, end, i);
        if (!k) return end;
        i += k;
    }
    return lpos;
}

/* Python's unicode-escape decoding of a string literal's body. */
static int decode_string(lexer *L, const char *p, size_t len, int line, token *t) {
    char *out = arena_alloc(L->ar, len * 3 + 1); /* escapes may grow: \\é -> \\xe9 */
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        if (p[i] != '\\' || i + 1 >= len) {
            out[o++] = p[i++];
            continue;
        }
        char e = p[i + 1];
        i += 2;
        switch (e) {
        case '\n':
            break;
        case '\\':
            out[o++] = '\\';
            break;
        case '\'':
            out[o++] = '\'';
            break;
        case '"':
            out[o++] = '"';
            break;
        case 'a':
            out[o++] = '\a';
            break;
        case 'b':
            out[o++] = '\b';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'v':
            out[o++] = '\v';
            break;
        case 'x':
        case 'u':
        case 'U': {
            int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            int32_t cp = 0;
            for (int k = 0; k < digits; k++) {
                char h = i + (size_t)k < len ? p[i + (size_t)k] : 0;
                int d = h >= '0' && h <= '9'   ? h - '0'
                        : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                               : -1;
                if (d < 0) return lex_fail(L, line, "truncated \\%c escape in a string", e);
                cp = cp * 16 + d;
            }
            i += (size_t)digits;
            if (cp > 0x10ffff) return lex_fail(L, line, "illegal Unicode character in a string");
            o += u8_encode(cp, out + o);
            break;
        }
        default:
            if (e >= '0' && e <= '7') {
                int32_t cp = e - '0';
                for (int k = 0; k < 2 && i < len && p[i] >= '0' && p[i] <= '7'; k++)
                    cp = cp * 8 + (p[i++] - '0');
                o += u8_encode(cp, out + o);
            } else if ((unsigned char)e >= 0x80) {
                /* Jinja2 first turns non-ASCII into \xNN / \uNNNN / \UNNNNNNNN text, so a
                 * backslash before one leaves a backslash and that text */
                int32_t cp;
                i -= 1;
                i += u8_decode(p, len, i, &cp);
                char esc[16];
                int k = snprintf(esc, sizeof(esc),
                                 cp <= 0xff     ? "\\x%02x"
                                 : cp <= 0xffff ? "\\u%04x"
                                                : "\\U%08x",
                                 cp);
                memcpy(out + o, esc, (size_t)k);
                o += (size_t)k;
            } else {
                /* unknown escapes stay as written */
                out[o++] = '\\';
                out[o++] = e;
            }
        }
    }
    out[o] = 0;
    t->s = out;
    t->len = o;
    return 0;
}

static bool is_digit(char ch) {
    return ch >= '0' && ch <= '9';
}
static bool is_name_start(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}

/* digits with single underscores between them: returns the end */
static size_t scan_digits(const char *s, size_t n, size_t i) {
    if (i >= n || !is_digit(s[i])) return i;
    while (i < n && is_digit(s[i])) {
        i++;
        if (i + 1 < n && s[i] == '_' && is_digit(s[i + 1])) i++;
    }
    return i;
}

static int lex_number(lexer *L, size_t *pi, int line) {
    const char *s = L->s;
    size_t n = L->n, i = *pi, start = i;
    size_t end = scan_digits(s, n, i);
    bool is_float = false;
    bool after_dot = start > 0 && s[start - 1] == '.';
    if (!after_dot) {
        size_t j = end;
        if (j + 1 < n && s[j] == '.' && is_digit(s[j + 1])) {
            j = scan_digits(s, n, j + 1);
            is_float = true;
        }
        if (j < n && (s[j] == 'e' || s[j] == 'E')) {
            size_t k = j + 1;
            if (k < n && (s[k] == '+' || s[k] == '-')) k++;
            if (k < n && is_digit(s[k])) {
                j = scan_digits(s, n, k);
                is_float = true;
            }
        }
        if (is_float) end = j;
    }
    char buf[128];
    size_t bl = 0;
    int base = 10;
    if (!is_float && s[start] == '0' && !(start + 1 < n && strchr("bBoOxX", s[start + 1]))) {
        /* a decimal integer that starts with 0 is only zeros: "01" is 0 then 1 */
        end = start + 1;
        while (end < n && (s[end] == '0' || (s[end] == '_' && end + 1 < n && s[end + 1] == '0')))
            end++;
    }
    if (!is_float && s[start] == '0' && start + 1 < n && strchr("bBoOxX", s[start + 1])) {
        char b = (char)(s[start + 1] | 0x20);
        base = b == 'b' ? 2 : b == 'o' ? 8 : 16;
        end = start + 2;
        while (end < n && (strchr("_0123456789abcdefABCDEF", s[end]))) end++;
        start += 2;
    }
    for (size_t k = start; k < end && bl < sizeof(buf) - 1; k++)
        if (s[k] != '_') buf[bl++] = s[k];
    buf[bl] = 0;
    token *t = push(L, is_float ? T_FLOAT : T_INT, line, s + *pi, end - *pi);
    errno = 0;
    char *ep;
    if (is_float)
        t->f = strtod(buf, &ep);
    else {
        t->i = strtoll(buf, &ep, base);
        if (errno == ERANGE) return lex_fail(L, line, "integer %s is too large", buf);
    }
    if (*ep || !bl) return lex_fail(L, line, "invalid number literal");
    *pi = end;
    return 0;
}

static const char *const operators[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/",
                                        "*",  "%",  "~",  "[",  "]",  "(",  ")", "{", "}",
                                        ">",  "<",  "=",  ".",  ":",  "|",  ",", ";"};

/* Tokens inside {{ }} or {% %} until the end delimiter; returns the position after it. */
static int lex_tag(lexer *L, bool is_block, size_t *pi, bool *line_starting) {
    const char *s = L->s;
    size_t n = L->n, i = *pi;
    char stack[JJ_MAX_PARSE_DEPTH];
    int depth = 0;
    int open_line = L->line;
    for (;;) {
        if (i >= n)
            return lex_fail(L, open_line, "unexpected end of template: %s tag is not closed",
                            is_block ? "a {%" : "a {{");
        if (depth == 0) {
            char close = is_block ? '%' : '}';
            size_t q = 0;
            if (s[i] == '-' && i + 2 < n && s[i + 1] == close && s[i + 2] == '}') {
                q = skip_space(s, n, i + 3);
            } else if (is_block && s[i] == '+' && i + 2 < n && s[i + 1] == '%' && s[i + 2] == '}') {
                q = i + 3;
            } else if (s[i] == close && i + 1 < n && s[i + 1] == '}') {
                q = i + 2;
                if (is_block && q < n && s[q] == '\n') q++; /* trim_blocks */
            }
            if (q) {
                push(L, is_block ? T_BLOCK_END : T_VAR_END, L->line, NULL, 0);
                L->line += count_newlines(s, i, q);
                *line_starting = s[q - 1] == '\n';
                *pi = q;
                return 0;
            }
        }
        size_t k = space_at(s, n, i);
        if (k) {
            L->line += s[i] == '\n';
            i += k;
            continue;
        }
        char ch = s[i];
        if (is_digit(ch)) {
            if (lex_number(L, &i, L->line) < 0) return -1;
            continue;
        }
        if (is_name_start(ch)) {
            size_t st = i;
            while (i < n && (is_name_start(s[i]) || is_digit(s[i]))) i++;
            push(L, T_NAME, L->line, s + st, i - st);
            continue;
        }
        if (ch == '\'' || ch == '"') {
            size_t st = i + 1, j = st;
            while (j < n && s[j] != ch) j += s[j] == '\\' ? 2 : 1;
            if (j >= n) return lex_fail(L, L->line, "unexpected end of string");
            token *t = push(L, T_STRING, L->line, NULL, 0);
            if (decode_string(L, s + st, j - st, L->line, t) < 0) return -1;
            L->line += count_newlines(s, st, j);
            i = j + 1;
            continue;
        }
        const char *op = NULL;
        for (size_t o = 0; o < ARRAY_LEN(operators); o++) {
            size_t ol = strlen(operators[o]);
            if (i + ol <= n && !memcmp(s + i, operators[o], ol)) {
                op = operators[o];
                break;
            }
        }
        if (!op) {
            int32_t cp;
            size_t cl = u8_decode(s, n, i, &cp);
            return lex_fail(L, L->line, "unexpected char '%.*s'", (int)cl, s + i);
        }
        size_t ol = strlen(op);
        if (ol == 1 && strchr("([{", op[0])) {
            if (depth >= (int)sizeof(stack))
                return lex_fail(L, L->line, "brackets nested too deeply");
            stack[depth++] = op[0] == '(' ? ')' : op[0] == '[' ? ']' : '}';
        } else if (ol == 1 && strchr(")]}", op[0])) {
            if (!depth) return lex_fail(L, L->line, "unexpected '%c'", op[0]);
            if (stack[depth - 1] != op[0])
                return lex_fail(L, L->line, "unexpected '%c', expected '%c'", op[0],
                                stack[depth - 1]);
            depth--;
        }
        token *t = push(L, T_OP, L->line, op, ol);
        t->i = ol == 1 ? op[0] : OP2(op[0], op[1]);
        i += ol;
    }
}

/* {% raw %} ... {% endraw %}: returns 1 when a raw block was lexed at TAG. */
static int try_raw(lexer *L, size_t tag, size_t body, bool *line_starting) {
    const char *s = L->s;
    size_t n = L->n, i = skip_space(s, n, body);
    if (i + 3 > n || memcmp(s + i, "raw", 3)) return 0;
    i = skip_space(s, n, i + 3);
    if (i + 3 <= n && !memcmp(s + i, "-%}", 3))
        i = skip_space(s, n, i + 3);
    else if (i + 2 <= n && !memcmp(s + i, "%}", 2))
        i += 2;
    else
        return 0;
    (void)tag;
    int line = L->line;
    if (i >= n) { /* nothing after {% raw %}: Jinja2 stops there without complaint */
        L->line += count_newlines(s, body, n);
        L->pos = n;
        return 1;
    }
    for (size_t j = i; j + 1 < n; j++) {
        if (s[j] != '{' || s[j + 1] != '%') continue;
        size_t k = j + 2;
        char sign = k < n && (s[k] == '-' || s[k] == '+') ? s[k] : 0;
        k = skip_space(s, n, k + (sign ? 1 : 0));
        if (k + 6 > n || memcmp(s + k, "endraw", 6)) continue;
        k = skip_space(s, n, k + 6);
        size_t q;
        if (k + 3 <= n && !memcmp(s + k, "-%}", 3))
            q = skip_space(s, n, k + 3);
        else if (k + 3 <= n && !memcmp(s + k, "+%}", 3))
            q = k + 3;
        else if (k + 2 <= n && !memcmp(s + k, "%}", 2)) {
            q = k + 2;
            if (q < n && s[q] == '\n') q++;
        } else
            continue;
        size_t end = sign == '-'   ? rstrip_end(s, i, j)
                     : sign == '+' ? j
                                   : lstrip_end(s, i, j, false);
        if (end > i) push(L, T_DATA, line, s + i, end - i);
        L->line += count_newlines(s, body, q);
        *line_starting = s[q - 1] == '\n';
        L->pos = q;
        return 1;
    }
    return lex_fail(L, line, "missing end of raw directive");
}

int jinja_lex(arena *a, const char *src, size_t len, token **toks, size_t *ntoks, char *err,
              size_t errlen) {
    /* newlines: \r\n and \r become \n; one trailing newline goes */
    char *s = arena_alloc(a, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else
            s[n++] = src[i];
    }
    if (n && s[n - 1] == '\n') n--;
    s[n] = 0;

    lexer L = {.ar = a, .s = s, .n = n, .line = 1, .err = err, .errlen = errlen};
    bool line_starting = true;
    while (L.pos < n) {
        size_t i = L.pos, tag = n;
        for (; i + 1 < n; i++)
            if (s[i] == '{' && (s[i + 1] == '{' || s[i + 1] == '%' || s[i + 1] == '#')) {
                tag = i;
                break;
            }
        if (tag == n) {
            push(&L, T_DATA, L.line, s + L.pos, n - L.pos);
            break;
        }
        char kind = s[tag + 1];
        char sign = tag + 2 < n && (s[tag + 2] == '-' || s[tag + 2] == '+') ? s[tag + 2] : 0;
        size_t end = tag;
        if (sign == '-')
            end = rstrip_end(s, L.pos, tag);
        else if (sign != '+' && kind != '{')
            end = lstrip_end(s, L.pos, tag, line_starting);
        if (end > L.pos) push(&L, T_DATA, L.line, s + L.pos, end - L.pos);
        L.line += count_newlines(s, L.pos, tag);
        size_t body = tag + 2 + (sign ? 1 : 0);
        line_starting = false;
        if (kind == '#') {
            size_t q = 0;
            for (size_t j = body; j + 1 < n; j++) {
                if (s[j] != '#' || s[j + 1] != '}') continue;
                if (j > body && s[j - 1] == '-')
                    q = skip_space(s, n, j + 2);
                else {
                    q = j + 2;
                    if (!(j > body && s[j - 1] == '+') && q < n && s[q] == '\n') q++;
                }
                break;
            }
            if (!q && body >= n) break; /* Jinja2 accepts a bare "{#" at the very end */
            if (!q) {
                lex_fail(&L, L.line, "missing end of comment tag");
                goto fail;
            }
            L.line += count_newlines(s, tag, q);
            line_starting = s[q - 1] == '\n';
            L.pos = q;
            continue;
        }
        if (kind == '%') {
            int r = try_raw(&L, tag, body, &line_starting);
            if (r < 0) goto fail;
            if (r) continue;
        }
        push(&L, kind == '%' ? T_BLOCK_BEGIN : T_VAR_BEGIN, L.line, NULL, 0);
        size_t p = body;
        if (lex_tag(&L, kind == '%', &p, &line_starting) < 0) goto fail;
        L.pos = p;
    }
    push(&L, T_EOF, L.line, NULL, 0);
    *toks = L.toks;
    *ntoks = L.ntok;
    return 0;
fail:
    free(L.toks);
    return -1;
}
