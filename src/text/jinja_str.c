/*
 * jinja_str.c — Python's str operations over UTF-8 for the Jinja interpreter: code points
 * (len, indexing and slicing count characters, not bytes), whitespace as str.isspace()
 * sees it, case mapping (utf8proc), strip/split/replace/find, and both ways Python formats
 * strings: the % operator and str.format().
 */
#include "text/jinja_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

size_t u8_decode(const char *s, size_t len, size_t i, int32_t *cp) {
    utf8proc_int32_t c;
    utf8proc_ssize_t k =
        utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &c);
    if (k <= 0) {
        *cp = (unsigned char)s[i];
        return 1;
    }
    *cp = c;
    return (size_t)k;
}

size_t u8_encode(int32_t cp, char *out) {
    utf8proc_ssize_t k = utf8proc_encode_char(cp, (utf8proc_uint8_t *)out);
    return k > 0 ? (size_t)k : 0;
}

size_t u8_count(const char *s, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80) n++;
    return n;
}

void utf8_sanitize(char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k =
            utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
        if (k <= 0) {
            s[i++] = '?';
            continue;
        }
        i += (size_t)k;
    }
}

bool py_isspace(int32_t cp) {
    if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x1f);
    if (cp == 0x85 || cp == 0xa0) return true;
    utf8proc_category_t cat = utf8proc_category(cp);
    if (cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP)
        return true;
    return false;
}

bool py_isprintable(int32_t cp) {
    if (cp == ' ') return true;
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS:
        return false;
    default:
        return true;
    }
}

static bool is_cased_letter(int32_t cp) {
    utf8proc_category_t cat = utf8proc_category(cp);
    return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL ||
           cat == UTF8PROC_CATEGORY_LT;
}

typedef enum { CASE_UPPER, CASE_LOWER, CASE_TITLE } case_kind;

static int32_t map_case(int32_t cp, case_kind k) {
    if (k == CASE_UPPER) return utf8proc_toupper(cp);
    if (k == CASE_LOWER) return utf8proc_tolower(cp);
    return utf8proc_totitle(cp);
}

/* Maps every code point; mode 0: all with k; title: Python's str.title() (after a cased
 * letter lower, else title); capitalize: first title, rest lower. */
static jv *map_str(jctx *c, const jv *s, int mode, case_kind k) {
    outbuf b = {0};
    bool prev_cased = false;
    bool first = true;
    for (size_t i = 0; i < s->u.str.len;) {
        int32_t cp;
        size_t n = u8_decode(s->u.str.s, s->u.str.len, i, &cp);
        int32_t m;
        if (mode == 1) {
            m = prev_cased ? utf8proc_tolower(cp) : utf8proc_totitle(cp);
            prev_cased = is_cased_letter(cp);
        } else if (mode == 2)
            m = first ? utf8proc_totitle(cp) : utf8proc_tolower(cp);
        else
            m = map_case(cp, k);
        first = false;
        char enc[8];
        ob_put(c, &b, enc, u8_encode(m, enc));
        i += n;
    }
    jv *r = jv_str(c, b.s ? b.s : "", b.len);
    ob_free(&b);
    return r;
}

jv *py_str_upper(jctx *c, const jv *s) {
    return map_str(c, s, 0, CASE_UPPER);
}
jv *py_str_lower(jctx *c, const jv *s) {
    return map_str(c, s, 0, CASE_LOWER);
}
jv *py_str_title(jctx *c, const jv *s) {
    return map_str(c, s, 1, CASE_TITLE);
}
jv *py_str_capitalize(jctx *c, const jv *s) {
    return map_str(c, s, 2, CASE_TITLE);
}

static bool in_chars(int32_t cp, const jv *chars) {
    if (!chars) return py_isspace(cp);
    for (size_t i = 0; i < chars->u.str.len;) {
        int32_t x;
        i += u8_decode(chars->u.str.s, chars->u.str.len, i, &x);
        if (x == cp) return true;
    }
    return false;
}

jv *py_str_strip(jctx *c, const jv *s, const jv *chars, bool left, bool right) {
    const char *p = s->u.str.s;
    size_t a = 0, z = s->u.str.len;
    if (chars && chars->kind != JV_STR) chars = NULL;
    if (left)
        while (a < z) {
            int32_t cp;
            size_t k = u8_decode(p, z, a, &cp);
            if (!in_chars(cp, chars)) break;
            a += k;
        }
    if (right)
        while (z > a) {
            size_t st = z - 1;
            while (st > a && ((unsigned char)p[st] & 0xc0) == 0x80) st--;
            int32_t cp;
            u8_decode(p, z, st, &cp);
            if (!in_chars(cp, chars)) break;
            z = st;
        }
    return jv_strref(c, p + a, z - a);
}

static const char *find_bytes(const char *h, size_t hl, const char *n, size_t nl) {
    if (!nl) return h;
    if (nl > hl) return NULL;
    return memmem(h, hl, n, nl);
}

jv *py_str_replace(jctx *c, const jv *s, const jv *old, const jv *new_, long long count) {
    outbuf b = {0};
    const char *p = s->u.str.s, *end = p + s->u.str.len;
    size_t ol = old->u.str.len;
    long long done = 0;
    if (!ol) {
        /* Python inserts NEW between every character (and at both ends) */
        for (size_t i = 0; i <= s->u.str.len && !c->failed;) {
            if (count < 0 || done < count) {
                ob_put(c, &b, new_->u.str.s, new_->u.str.len);
                done++;
            }
            if (i == s->u.str.len) break;
            int32_t cp;
            size_t k = u8_decode(p, s->u.str.len, i, &cp);
            ob_put(c, &b, p + i, k);
            i += k;
        }
    } else {
        while (p <= end && !c->failed) {
            const char *hit = (count < 0 || done < count)
                                  ? find_bytes(p, (size_t)(end - p), old->u.str.s, ol)
                                  : NULL;
            if (!hit) {
                ob_put(c, &b, p, (size_t)(end - p));
                break;
            }
            ob_put(c, &b, p, (size_t)(hit - p));
            ob_put(c, &b, new_->u.str.s, new_->u.str.len);
            p = hit + ol;
            done++;
        }
    }
    jv *r = jv_str(c, b.s ? b.s : "", b.len);
    ob_free(&b);
    return r;
}

/* str.split / str.rsplit: SEP NULL splits on runs of whitespace. */
jv *py_str_split(jctx *c, const jv *s, const jv *sep, long long maxsplit, bool from_right) {
    jv *out = jv_list(c, SEQ_LIST, 0);
    const char *p = s->u.str.s;
    size_t len = s->u.str.len;
    if (sep && sep->kind == JV_STR) {
        size_t sl = sep->u.str.len;
        if (!sl) {
            jerr(c, "empty separator");
            return out;
        }
        if (!from_right) {
            size_t start = 0;
            long long n = 0;
            for (;;) {
                const char *hit = (maxsplit < 0 || n < maxsplit)
                                      ? find_bytes(p + start, len - start, sep->u.str.s, sl)
                                      : NULL;
                if (!hit) break;
                jv_list_push(c, out, jv_strref(c, p + start, (size_t)(hit - (p + start))));
                start = (size_t)(hit - p) + sl;
                n++;
            }
            jv_list_push(c, out, jv_strref(c, p + start, len - start));
        } else {
            size_t end = len;
            long long n = 0;
            jv *rev = jv_list(c, SEQ_LIST, 0);
            while (maxsplit < 0 || n < maxsplit) {
                /* last occurrence within [0, end) */
                const char *hit = NULL;
                for (size_t i = end >= sl ? end - sl + 1 : 0; i-- > 0;)
                    if (!memcmp(p + i, sep->u.str.s, sl)) {
                        hit = p + i;
                        break;
                    }
                if (!hit) break;
                size_t hi = (size_t)(hit - p);
                jv_list_push(c, rev, jv_strref(c, p + hi + sl, end - hi - sl));
                end = hi;
                n++;
            }
            jv_list_push(c, rev, jv_strref(c, p, end));
            for (size_t i = rev->u.list.n; i-- > 0;) jv_list_push(c, out, rev->u.list.v[i]);
        }
        return out;
    }
    /* whitespace runs; leading/trailing whitespace gives no empty strings */
    if (from_right) {
        jv *rev = jv_list(c, SEQ_LIST, 0);
        size_t end = len;
        long long n = 0;
        for (;;) {
            while (end > 0) {
                size_t st = end - 1;
                while (st > 0 && ((unsigned char)p[st] & 0xc0) == 0x80) st--;
                int32_t cp;
                u8_decode(p, len, st, &cp);
                if (!py_isspace(cp)) break;
                end = st;
            }
            if (!end) break;
            if (maxsplit >= 0 && n >= maxsplit) {
                jv_list_push(c, rev, jv_strref(c, p, end));
                break;
            }
            size_t st = end;
            while (st > 0) {
                size_t q = st - 1;
                while (q > 0 && ((unsigned char)p[q] & 0xc0) == 0x80) q--;
                int32_t cp;
                u8_decode(p, len, q, &cp);
                if (py_isspace(cp)) break;
                st = q;
            }
            jv_list_push(c, rev, jv_strref(c, p + st, end - st));
            end = st;
            n++;
        }
        for (size_t i = rev->u.list.n; i-- > 0;) jv_list_push(c, out, rev->u.list.v[i]);
        return out;
    }
    size_t i = 0;
    long long n = 0;
    for (;;) {
        while (i < len) {
            int32_t cp;
            size_t k = u8_decode(p, len, i, &cp);
            if (!py_isspace(cp)) break;
            i += k;
        }
        if (i >= len) break;
        if (maxsplit >= 0 && n >= maxsplit) {
            /* the rest, with trailing whitespace stripped */
            jv *rest = py_str_strip(c, jv_strref(c, p + i, len - i), NULL, false, true);
            jv_list_push(c, out, rest);
            break;
        }
        size_t st = i;
        while (i < len) {
            int32_t cp;
            size_t k = u8_decode(p, len, i, &cp);
            if (py_isspace(cp)) break;
            i += k;
        }
        jv_list_push(c, out, jv_strref(c, p + st, i - st));
        n++;
    }
    return out;
}

jv *py_str_chars(jctx *c, const jv *s) {
    jv *out = jv_list(c, SEQ_LIST, 0);
    for (size_t i = 0; i < s->u.str.len;) {
        int32_t cp;
        size_t k = u8_decode(s->u.str.s, s->u.str.len, i, &cp);
        jv_list_push(c, out, jv_strref(c, s->u.str.s + i, k));
        i += k;
    }
    return out;
}

jv *py_str_index(jctx *c, const jv *s, long long idx) {
    long long n = (long long)u8_count(s->u.str.s, s->u.str.len);
    if (idx < 0) idx += n;
    if (idx < 0 || idx >= n) return NULL;
    long long at = 0;
    for (size_t i = 0; i < s->u.str.len;) {
        int32_t cp;
        size_t k = u8_decode(s->u.str.s, s->u.str.len, i, &cp);
        if (at++ == idx) return jv_strref(c, s->u.str.s + i, k);
        i += k;
    }
    return NULL;
}

long long py_str_find(const jv *s, const jv *sub, bool from_right) {
    const char *h = s->u.str.s;
    size_t hl = s->u.str.len, nl = sub->u.str.len;
    const char *hit = NULL;
    if (!from_right)
        hit = find_bytes(h, hl, sub->u.str.s, nl);
    else if (nl <= hl)
        for (size_t i = hl - nl + 1; i-- > 0;)
            if (!memcmp(h + i, sub->u.str.s, nl)) {
                hit = h + i;
                break;
            }
    if (!hit) return -1;
    return (long long)u8_count(h, (size_t)(hit - h));
}

/* ---- % formatting ---- */
static void pad_put(jctx *c, outbuf *b, const char *s, size_t n, long width, bool left, char fill) {
    long w = (long)u8_count(s, n);
    if (!left)
        for (long i = w; i < width; i++) ob_putc(c, b, fill);
    ob_put(c, b, s, n);
    if (left)
        for (long i = w; i < width; i++) ob_putc(c, b, ' ');
}

static bool num_arg(jctx *c, const jv *v, double *f, long long *i, bool *is_int) {
    if (v->kind == JV_INT || v->kind == JV_BOOL) {
        *i = v->kind == JV_INT ? v->u.i : v->u.b;
        *f = (double)*i;
        *is_int = true;
        return true;
    }
    if (v->kind == JV_FLOAT) {
        *f = v->u.f;
        *i = (long long)v->u.f;
        *is_int = false;
        return true;
    }
    jerr(c, "a real number is required, not %s", jv_type_name(v));
    return false;
}

jv *py_percent_format(jctx *c, const jv *fmt, const jv *args) {
    outbuf b = {0};
    const char *p = fmt->u.str.s, *end = p + fmt->u.str.len;
    size_t argi = 0;
    bool is_tuple = args->kind == JV_LIST && args->u.list.seq == SEQ_TUPLE;
    bool is_map = args->kind == JV_DICT || args->kind == JV_UNDEF; /* has __getitem__ */
    bool used_single = false;
    while (p < end && !c->failed) {
        if (*p != '%') {
            ob_putc(c, &b, *p++);
            continue;
        }
        p++;
        if (p < end && *p == '%') {
            ob_putc(c, &b, '%');
            p++;
            continue;
        }
        const jv *arg = NULL;
        if (p < end && *p == '(') {
            const char *q = memchr(p, ')', (size_t)(end - p));
            if (!q || !is_map) {
                jerr(c, "format requires a mapping");
                break;
            }
            jv *key = jv_strref(c, p + 1, (size_t)(q - p - 1));
            if (args->kind == JV_UNDEF) {
                jerr_undef(c, args);
                break;
            }
            arg = jv_dict_get(args, key);
            if (!arg) {
                jerr(c, "KeyError: %.*s", (int)key->u.str.len, key->u.str.s);
                break;
            }
            p = q + 1;
        }
        char flags[8];
        int nf = 0;
        while (p < end && strchr("-+ #0", *p) && nf < 6) flags[nf++] = *p++;
        flags[nf] = 0;
        long width = -1, prec = -1;
        if (p < end && *p >= '0' && *p <= '9') {
            width = 0;
            while (p < end && *p >= '0' && *p <= '9' && width < 100000)
                width = width * 10 + (*p++ - '0');
        }
        if (p < end && *p == '.') {
            p++;
            prec = 0;
            while (p < end && *p >= '0' && *p <= '9' && prec < 1000)
                prec = prec * 10 + (*p++ - '0');
        }
        while (p < end && strchr("hlL", *p)) p++;
        if (p >= end) {
            jerr(c, "incomplete format");
            break;
        }
        char conv = *p++;
        if (!arg) {
            if (is_tuple) {
                if (argi >= args->u.list.n) {
                    jerr(c, "not enough arguments for format string");
                    break;
                }
                arg = args->u.list.v[argi++];
            } else {
                if (used_single) {
                    jerr(c, "not enough arguments for format string");
                    break;
                }
                used_single = true;
                arg = args;
            }
        }
        bool left = strchr(flags, '-') != NULL;
        char spec[32], out[512];
        if (conv == 's' || conv == 'r' || conv == 'a') {
            jv *s = conv == 's' ? jv_to_str(c, arg) : jv_repr(c, arg);
            size_t n = s->u.str.len;
            if (prec >= 0) {
                size_t cut = 0;
                long k = 0;
                while (cut < n && k < prec) {
                    int32_t cp;
                    cut += u8_decode(s->u.str.s, n, cut, &cp);
                    k++;
                }
                n = cut;
            }
            pad_put(c, &b, s->u.str.s, n, width, left, ' ');
        } else if (strchr("diouxXeEfFgGc", conv)) {
            double f;
            long long i;
            bool is_int;
            if (conv == 'c' && arg->kind == JV_STR) {
                if (u8_count(arg->u.str.s, arg->u.str.len) != 1) {
                    jerr(c, "%%c requires int or char");
                    break;
                }
                pad_put(c, &b, arg->u.str.s, arg->u.str.len, width, left, ' ');
                continue;
            }
            if (!num_arg(c, arg, &f, &i, &is_int)) break;
            if (!is_int && strchr("xXoc", conv)) {
                jerr(c, "%%%c format: an integer is required, not float", conv);
                break;
            }
            int sp = snprintf(spec, sizeof(spec), "%%%s", flags);
            if (width >= 0) sp += snprintf(spec + sp, sizeof(spec) - (size_t)sp, "%ld", width);
            if (prec >= 0) sp += snprintf(spec + sp, sizeof(spec) - (size_t)sp, ".%ld", prec);
            if (strchr("diouxXc", conv)) {
                if (conv == 'i' || conv == 'u') conv = 'd';
                if (conv == 'c') {
                    char enc[8];
                    size_t k = u8_encode((int32_t)i, enc);
                    pad_put(c, &b, enc, k, width, left, ' ');
                    continue;
                }
                snprintf(spec + sp, sizeof(spec) - (size_t)sp, "ll%c", conv);
                snprintf(out, sizeof(out), spec, i);
            } else {
                snprintf(spec + sp, sizeof(spec) - (size_t)sp, "%c", conv);
                snprintf(out, sizeof(out), spec, f);
            }
            ob_put(c, &b, out, strlen(out));
        } else {
            jerr(c, "unsupported format character '%c'", conv);
        }
    }
    if (!c->failed && is_tuple && argi < args->u.list.n)
        jerr(c, "not all arguments converted during string formatting");
    if (!c->failed && !is_tuple && !is_map && !used_single && !jv_is_seq(args))
        jerr(c, "not all arguments converted during string formatting");
    jv *r = jv_str(c, b.s ? b.s : "", b.len);
    ob_free(&b);
    return r;
}

/* ---- str.format ---- */
static void format_value(jctx *c, outbuf *b, jv *v, const char *spec, size_t sl) {
    /* [[fill]align][sign][#][0][width][,][.precision][type] */
    char fill = ' ', align = 0, sign = 0, type = 0;
    long width = -1, prec = -1;
    bool zero = false, comma = false;
    size_t i = 0;
    if (sl >= 2 && strchr("<>^=", spec[1])) {
        fill = spec[0];
        align = spec[1];
        i = 2;
    } else if (sl >= 1 && strchr("<>^=", spec[0])) {
        align = spec[0];
        i = 1;
    }
    if (i < sl && strchr("+- ", spec[i])) sign = spec[i++];
    if (i < sl && spec[i] == '#') i++;
    if (i < sl && spec[i] == '0') {
        zero = true;
        i++;
    }
    while (i < sl && spec[i] >= '0' && spec[i] <= '9')
        width = (width < 0 ? 0 : width * 10) + (spec[i++] - '0');
    if (i < sl && spec[i] == ',') {
        comma = true;
        i++;
    }
    if (i < sl && spec[i] == '.') {
        i++;
        prec = 0;
        while (i < sl && spec[i] >= '0' && spec[i] <= '9') prec = prec * 10 + (spec[i++] - '0');
    }
    if (i < sl) type = spec[i++];
    if (i < sl || comma || width > 100000 || prec > 1000) {
        jerr(c, "unsupported format specifier '%.*s'", (int)sl, spec);
        return;
    }
    char out[1200];
    const char *s;
    size_t n;
    bool numeric = v->kind == JV_INT || v->kind == JV_FLOAT || v->kind == JV_BOOL;
    if (numeric && (type || sign || prec >= 0 || zero)) {
        double f = v->kind == JV_FLOAT ? v->u.f : (double)(v->kind == JV_INT ? v->u.i : v->u.b);
        char fmt[32];
        int k = snprintf(fmt, sizeof(fmt), "%%%s", sign == '+' ? "+" : sign == ' ' ? " " : "");
        if (type == 'd' || (!type && v->kind != JV_FLOAT && prec < 0)) {
            if (v->kind == JV_FLOAT) {
                jerr(c, "Unknown format code 'd' for object of type 'float'");
                return;
            }
            snprintf(fmt + k, sizeof(fmt) - (size_t)k, "lld");
            snprintf(out, sizeof(out), fmt, v->kind == JV_INT ? v->u.i : (long long)v->u.b);
        } else if (type && strchr("eEfFgG%", type)) {
            if (type == '%') {
                f *= 100;
                snprintf(fmt + k, sizeof(fmt) - (size_t)k, ".%ldf%%%%", prec < 0 ? 6 : prec);
            } else
                snprintf(fmt + k, sizeof(fmt) - (size_t)k, ".%ld%c", prec < 0 ? 6 : prec, type);
            snprintf(out, sizeof(out), fmt, f);
        } else if (type && strchr("xXob", type) && v->kind != JV_FLOAT) {
            long long x = v->kind == JV_INT ? v->u.i : v->u.b;
            if (type == 'b') {
                char tmp[80];
                int t = 0;
                unsigned long long u = x < 0 ? (unsigned long long)-x : (unsigned long long)x;
                do tmp[t++] = (char)('0' + (u & 1));
                while (u >>= 1);
                int o = 0;
                if (x < 0) out[o++] = '-';
                while (t) out[o++] = tmp[--t];
                out[o] = 0;
            } else {
                snprintf(fmt + k, sizeof(fmt) - (size_t)k, "ll%c", type);
                snprintf(out, sizeof(out), fmt, x);
            }
        } else if (!type && prec >= 0) {
            snprintf(fmt + k, sizeof(fmt) - (size_t)k, ".%ldg", prec ? prec : 1);
            snprintf(out, sizeof(out), fmt, f);
        } else {
            jerr(c, "unsupported format specifier '%.*s'", (int)sl, spec);
            return;
        }
        s = out;
        n = strlen(out);
        if (zero && !align) {
            fill = '0';
            align = '=';
        }
        if (!align) align = '>';
    } else {
        jv *str = jv_to_str(c, v);
        s = str->u.str.s;
        n = str->u.str.len;
        if (type && type != 's') {
            jerr(c, "Unknown format code '%c' for object of type '%s'", type, jv_type_name(v));
            return;
        }
        if (prec >= 0) {
            size_t cut = 0;
            long k = 0;
            while (cut < n && k < prec) {
                int32_t cp;
                cut += u8_decode(s, n, cut, &cp);
                k++;
            }
            n = cut;
        }
        if (!align) align = numeric ? '>' : '<';
    }
    long w = (long)u8_count(s, n), padn = width > w ? width - w : 0;
    long before = align == '>' || align == '=' ? padn : align == '^' ? padn / 2 : 0;
    if (align == '=' && n && (s[0] == '-' || s[0] == '+' || s[0] == ' ')) {
        ob_putc(c, b, s[0]);
        s++;
        n--;
    }
    for (long k = 0; k < before; k++) ob_putc(c, b, fill);
    ob_put(c, b, s, n);
    for (long k = before; k < padn; k++) ob_putc(c, b, fill);
}

jv *py_str_format(jctx *c, const jv *fmt, jargs *a) {
    outbuf b = {0};
    const char *p = fmt->u.str.s, *end = p + fmt->u.str.len;
    int auto_idx = 0;
    while (p < end && !c->failed) {
        if (*p == '{' && p + 1 < end && p[1] == '{') {
            ob_putc(c, &b, '{');
            p += 2;
            continue;
        }
        if (*p == '}' && p + 1 < end && p[1] == '}') {
            ob_putc(c, &b, '}');
            p += 2;
            continue;
        }
        if (*p == '}') {
            jerr(c, "Single '}' encountered in format string");
            break;
        }
        if (*p != '{') {
            ob_putc(c, &b, *p++);
            continue;
        }
        const char *q = memchr(p, '}', (size_t)(end - p));
        if (!q) {
            jerr(c, "Single '{' encountered in format string");
            break;
        }
        const char *field = p + 1;
        size_t fl = (size_t)(q - field);
        const char *colon = memchr(field, ':', fl);
        const char *bang = memchr(field, '!', colon ? (size_t)(colon - field) : fl);
        size_t namel = bang ? (size_t)(bang - field) : colon ? (size_t)(colon - field) : fl;
        jv *v = NULL;
        if (!namel) {
            if (auto_idx >= a->npos) {
                jerr(c, "Replacement index %d out of range for positional args tuple", auto_idx);
                break;
            }
            v = a->pos[auto_idx++];
        } else if (strspn(field, "0123456789") >= namel) {
            int idx = atoi(field);
            if (idx >= a->npos) {
                jerr(c, "Replacement index %d out of range for positional args tuple", idx);
                break;
            }
            v = a->pos[idx];
        } else {
            for (int k = 0; k < a->nkw; k++)
                if (strlen(a->kwn[k]) == namel && !memcmp(a->kwn[k], field, namel)) v = a->kwv[k];
            if (!v) {
                jerr(c, "KeyError: '%.*s'", (int)namel, field);
                break;
            }
        }
        if (bang && bang + 1 < q) {
            if (bang[1] == 'r' || bang[1] == 'a')
                v = jv_repr(c, v);
            else if (bang[1] == 's')
                v = jv_to_str(c, v);
        }
        if (colon)
            format_value(c, &b, v, colon + 1, (size_t)(q - colon - 1));
        else
            jv_write_str(c, &b, v);
        p = q + 1;
    }
    jv *r = jv_str(c, b.s ? b.s : "", b.len);
    ob_free(&b);
    return r;
}

jv *html_escape(jctx *c, const jv *s) {
    outbuf b = {0};
    for (size_t i = 0; i < s->u.str.len; i++) {
        char ch = s->u.str.s[i];
        switch (ch) {
        case '&':
            ob_put(c, &b, "&amp;", 5);
            break;
        case '<':
            ob_put(c, &b, "&lt;", 4);
            break;
        case '>':
            ob_put(c, &b, "&gt;", 4);
            break;
        case '"':
            ob_put(c, &b, "&#34;", 5);
            break;
        case '\'':
            ob_put(c, &b, "&#39;", 5);
            break;
        default:
            ob_putc(c, &b, ch);
        }
    }
    jv *r = jv_str(c, b.s ? b.s : "", b.len);
    ob_free(&b);
    r->u.str.safe = true;
    return r;
}
