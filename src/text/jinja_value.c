/*
 * jinja_value.c — the Jinja interpreter's values: an arena they live in, constructors,
 * Python truthiness and equality, and their text forms exactly as Python writes them:
 * str() (what {{ x }} prints), repr() (how lists and dicts print their items) and
 * json.dumps() (transformers' tojson filter, ensure_ascii=False).
 */
#include "text/jinja_impl.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ---- */
struct arena_chunk {
    arena_chunk *next;
    size_t used, cap;
    _Alignas(16) char data[];
};

void *arena_alloc(arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        arena_chunk *ch = xmalloc(sizeof(*ch) + cap);
        ch->next = a->head;
        ch->used = 0;
        ch->cap = cap;
        a->head = ch;
        a->total += cap;
        if (a->limit && a->total > a->limit) a->over_limit = true;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

char *arena_strndup(arena *a, const char *s, size_t n) {
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void arena_free(arena *a) {
    arena_chunk *ch = a->head;
    while (ch) {
        arena_chunk *next = ch->next;
        free(ch);
        ch = next;
    }
    a->head = NULL;
    a->total = 0;
}

/* ---- errors ---- */
void jerr(jctx *c, const char *fmt, ...) {
    if (c->failed) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    utf8_sanitize(c->err);
    c->failed = true;
}

jv *jerr_undef(jctx *c, const jv *u) {
    jerr(c, "%s", u->u.undef.msg ? u->u.undef.msg : "value is undefined");
    return JV_UNDEFINED;
}

/* ---- constructors ---- */
jv jv_undefined_v = {.kind = JV_UNDEF};
jv jv_none_v = {.kind = JV_NONE};
jv jv_true_v = {.kind = JV_BOOL, .u.b = true};
jv jv_false_v = {.kind = JV_BOOL, .u.b = false};

jv *jv_new(jctx *c, jv_kind kind) {
    jv *v = arena_alloc(&c->ar, sizeof(jv));
    v->kind = kind;
    return v;
}

/* Small integers are shared (values are immutable), as CPython does: loops allocate less. */
static jv small_ints[1024];
static pthread_once_t small_ints_once = PTHREAD_ONCE_INIT;

static void init_small_ints(void) {
    for (size_t k = 0; k < ARRAY_LEN(small_ints); k++) {
        small_ints[k].kind = JV_INT;
        small_ints[k].u.i = (long long)k;
    }
}

jv *jv_int(jctx *c, long long i) {
    if (i >= 0 && i < (long long)ARRAY_LEN(small_ints)) {
        pthread_once(&small_ints_once, init_small_ints);
        return &small_ints[i];
    }
    jv *v = jv_new(c, JV_INT);
    v->u.i = i;
    return v;
}

jv *jv_float(jctx *c, double f) {
    jv *v = jv_new(c, JV_FLOAT);
    v->u.f = f;
    return v;
}

jv *jv_strref(jctx *c, const char *s, size_t len) {
    jv *v = jv_new(c, JV_STR);
    v->u.str.s = s;
    v->u.str.len = len;
    return v;
}

jv *jv_str(jctx *c, const char *s, size_t len) {
    if (len > JJ_MAX_OUTPUT) {
        jerr(c, "string of %zu bytes is larger than the limit (%u)", len, JJ_MAX_OUTPUT);
        len = 0;
    }
    return jv_strref(c, arena_strndup(&c->ar, s, len), len);
}

jv *jv_cstr(jctx *c, const char *s) {
    return jv_str(c, s, strlen(s));
}

jv *jv_list(jctx *c, jv_seq seq, size_t cap) {
    if (cap > JJ_MAX_ITEMS) {
        jerr(c, "list is longer than the limit (%d items)", JJ_MAX_ITEMS);
        cap = 4;
    }
    jv *v = jv_new(c, JV_LIST);
    v->u.list.seq = seq;
    v->u.list.cap = cap ? cap : 4;
    v->u.list.v = arena_alloc(&c->ar, v->u.list.cap * sizeof(jv *));
    return v;
}

void jv_list_push(jctx *c, jv *l, jv *item) {
    if (l->u.list.n == l->u.list.cap) {
        if (l->u.list.cap >= JJ_MAX_ITEMS) {
            jerr(c, "list is longer than the limit (%d items)", JJ_MAX_ITEMS);
            return;
        }
        size_t cap = l->u.list.cap * 2;
        jv **nv = arena_alloc(&c->ar, cap * sizeof(jv *));
        memcpy(nv, l->u.list.v, l->u.list.n * sizeof(jv *));
        l->u.list.v = nv;
        l->u.list.cap = cap;
    }
    l->u.list.v[l->u.list.n++] = item;
}

jv *jv_dict(jctx *c) {
    jv *v = jv_new(c, JV_DICT);
    v->u.dict.cap = 4;
    v->u.dict.k = arena_alloc(&c->ar, 4 * sizeof(jv *));
    v->u.dict.v = arena_alloc(&c->ar, 4 * sizeof(jv *));
    return v;
}

/* Dict keys compare as Python's: 1 == 1.0 == True, strings by content. */
static bool key_eq(const jv *a, const jv *b) {
    if (a->kind == JV_STR && b->kind == JV_STR)
        return a->u.str.len == b->u.str.len && !memcmp(a->u.str.s, b->u.str.s, a->u.str.len);
    if (a->kind == JV_STR || b->kind == JV_STR) return false;
    return jv_eq(a, b);
}

jv *jv_dict_get(const jv *d, const jv *key) {
    for (size_t i = 0; i < d->u.dict.n; i++)
        if (key_eq(d->u.dict.k[i], key)) return d->u.dict.v[i];
    return NULL;
}

jv *jv_dict_gets(const jv *d, const char *key) {
    return jv_dict_getn(d, key, strlen(key));
}

jv *jv_dict_getn(const jv *d, const char *key, size_t len) {
    for (size_t i = 0; i < d->u.dict.n; i++) {
        const jv *k = d->u.dict.k[i];
        if (k->kind == JV_STR && k->u.str.len == len && !memcmp(k->u.str.s, key, len))
            return d->u.dict.v[i];
    }
    return NULL;
}

void jv_dict_set(jctx *c, jv *d, jv *key, jv *val) {
    for (size_t i = 0; i < d->u.dict.n; i++)
        if (key_eq(d->u.dict.k[i], key)) {
            d->u.dict.v[i] = val;
            return;
        }
    if (d->u.dict.n == d->u.dict.cap) {
        size_t cap = d->u.dict.cap * 2;
        jv **nk = arena_alloc(&c->ar, cap * sizeof(jv *));
        jv **nv = arena_alloc(&c->ar, cap * sizeof(jv *));
        memcpy(nk, d->u.dict.k, d->u.dict.n * sizeof(jv *));
        memcpy(nv, d->u.dict.v, d->u.dict.n * sizeof(jv *));
        d->u.dict.k = nk;
        d->u.dict.v = nv;
        d->u.dict.cap = cap;
    }
    d->u.dict.k[d->u.dict.n] = key;
    d->u.dict.v[d->u.dict.n++] = val;
}

jv *jv_undef(jctx *c, const char *fmt, ...) {
    char buf[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    jv *v = jv_new(c, JV_UNDEF);
    v->u.undef.msg = arena_strndup(&c->ar, buf, strlen(buf));
    return v;
}

jv *jv_builtin(jctx *c, const char *name, jbuiltin fn, jv *self) {
    jv *v = jv_new(c, JV_FUNC);
    v->u.fn.kind = FN_BUILTIN;
    v->u.fn.name = name;
    v->u.fn.fn = fn;
    v->u.fn.self = self;
    return v;
}

jv *jv_from_json(jctx *c, const json_t *j) {
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        jv *d = jv_dict(c);
        for (void *it = json_object_iter((json_t *)j); it;
             it = json_object_iter_next((json_t *)j, it))
            jv_dict_set(c, d, jv_cstr(c, json_object_iter_key(it)),
                        jv_from_json(c, json_object_iter_value(it)));
        return d;
    }
    case JSON_ARRAY: {
        jv *l = jv_list(c, SEQ_LIST, json_array_size(j));
        for (size_t i = 0; i < json_array_size(j); i++)
            jv_list_push(c, l, jv_from_json(c, json_array_get(j, i)));
        return l;
    }
    case JSON_STRING:
        return jv_str(c, json_string_value(j), json_string_length(j));
    case JSON_INTEGER:
        return jv_int(c, json_integer_value(j));
    case JSON_REAL:
        return jv_float(c, json_real_value(j));
    case JSON_TRUE:
        return JV_BOOLV(true);
    case JSON_FALSE:
        return JV_BOOLV(false);
    default:
        return JV_NONEV;
    }
}

/* ---- Python semantics ---- */
bool jv_truthy(const jv *v) {
    switch (v->kind) {
    case JV_UNDEF:
    case JV_NONE:
        return false;
    case JV_BOOL:
        return v->u.b;
    case JV_INT:
        return v->u.i != 0;
    case JV_FLOAT:
        return v->u.f != 0;
    case JV_STR:
        return v->u.str.len > 0;
    case JV_LIST:
        return v->u.list.seq == SEQ_GEN || v->u.list.n > 0;
    case JV_DICT:
        return v->u.dict.n > 0;
    default:
        return true;
    }
}

static bool is_number(const jv *v) {
    return v->kind == JV_INT || v->kind == JV_FLOAT || v->kind == JV_BOOL;
}

static double num_value(const jv *v) {
    return v->kind == JV_FLOAT ? v->u.f : v->kind == JV_INT ? (double)v->u.i : (double)v->u.b;
}

bool jv_eq(const jv *a, const jv *b) {
    if (a == b) return a->kind != JV_FLOAT || a->u.f == a->u.f;
    if (is_number(a) && is_number(b)) {
        if (a->kind != JV_FLOAT && b->kind != JV_FLOAT)
            return (a->kind == JV_INT ? a->u.i : a->u.b) == (b->kind == JV_INT ? b->u.i : b->u.b);
        return num_value(a) == num_value(b);
    }
    if (a->kind != b->kind) return false;
    switch (a->kind) {
    case JV_UNDEF:
    case JV_NONE:
        return true;
    case JV_STR:
        return a->u.str.len == b->u.str.len && !memcmp(a->u.str.s, b->u.str.s, a->u.str.len);
    case JV_LIST: {
        bool a_tuple = a->u.list.seq == SEQ_TUPLE, b_tuple = b->u.list.seq == SEQ_TUPLE;
        if (a->u.list.seq == SEQ_GEN || b->u.list.seq == SEQ_GEN) return false;
        if (a_tuple != b_tuple || a->u.list.n != b->u.list.n) return false;
        for (size_t i = 0; i < a->u.list.n; i++)
            if (!jv_eq(a->u.list.v[i], b->u.list.v[i])) return false;
        return true;
    }
    case JV_DICT:
    case JV_NS: {
        if (a->u.dict.n != b->u.dict.n) return false;
        for (size_t i = 0; i < a->u.dict.n; i++) {
            const jv *o = jv_dict_get(b, a->u.dict.k[i]);
            if (!o || !jv_eq(a->u.dict.v[i], o)) return false;
        }
        return true;
    }
    default:
        return false;
    }
}

const char *jv_type_name(const jv *v) {
    switch (v->kind) {
    case JV_UNDEF:
        return "Undefined";
    case JV_NONE:
        return "NoneType";
    case JV_BOOL:
        return "bool";
    case JV_INT:
        return "int";
    case JV_FLOAT:
        return "float";
    case JV_STR:
        return "str";
    case JV_LIST:
        switch (v->u.list.seq) {
        case SEQ_TUPLE:
            return "tuple";
        case SEQ_GEN:
            return "generator";
        case SEQ_ITEMS:
            return "dict_items";
        case SEQ_KEYS:
            return "dict_keys";
        case SEQ_VALUES:
            return "dict_values";
        default:
            return "list";
        }
    case JV_DICT:
        return "dict";
    case JV_NS:
        return "Namespace";
    case JV_FUNC:
        return v->u.fn.kind == FN_BUILTIN && v->u.fn.self ? "builtin_function_or_method"
                                                          : "function";
    case JV_LOOP:
        return "LoopContext";
    }
    return "object";
}

bool jv_is_seq(const jv *v) {
    return v->kind == JV_LIST && (v->u.list.seq == SEQ_LIST || v->u.list.seq == SEQ_TUPLE);
}

/* ---- output buffers ---- */
void ob_put(jctx *c, outbuf *b, const char *s, size_t n) {
    if (b->len + n > JJ_MAX_OUTPUT) {
        jerr(c, "output is larger than the limit (%u bytes)", JJ_MAX_OUTPUT);
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        b->s = xrealloc(b->s, cap);
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

void ob_putc(jctx *c, outbuf *b, char ch) {
    ob_put(c, b, &ch, 1);
}

void ob_free(outbuf *b) {
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

static void ob_puts(jctx *c, outbuf *b, const char *s) {
    ob_put(c, b, s, strlen(s));
}

/* repr(float): the shortest digits that read back exactly, in Python's layout. */
void py_float_repr(double f, char *buf, size_t n) {
    if (isnan(f)) {
        snprintf(buf, n, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(buf, n, f < 0 ? "-inf" : "inf");
        return;
    }
    if (f == 0) {
        snprintf(buf, n, signbit(f) ? "-0.0" : "0.0");
        return;
    }
    char tmp[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f) break;
    }
    /* tmp is [-]d[.ddd]e[+-]XX: pull out the digits and the decimal exponent */
    char digits[24] = {0};
    int nd = 0;
    const char *p = tmp;
    bool neg = *p == '-';
    if (neg) p++;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    int exp10 = atoi(p + 1);
    int decpt = exp10 + 1; /* value = 0.DIGITS x 10^decpt */
    char *o = buf;
    char *end = buf + n - 1;
#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (o < end) *o++ = (ch);                                                                  \
    } while (0)
    if (neg) PUT('-');
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            PUT('0');
            PUT('.');
            for (int i = 0; i < -decpt; i++) PUT('0');
            for (int i = 0; i < nd; i++) PUT(digits[i]);
        } else {
            for (int i = 0; i < decpt; i++) PUT(i < nd ? digits[i] : '0');
            PUT('.');
            if (nd > decpt)
                for (int i = decpt; i < nd; i++) PUT(digits[i]);
            else
                PUT('0');
        }
        *o = 0;
    } else {
        PUT(digits[0]);
        if (nd > 1) {
            PUT('.');
            for (int i = 1; i < nd; i++) PUT(digits[i]);
        }
        *o = 0;
        snprintf(o, (size_t)(end - o + 1), "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    }
#undef PUT
}

static void write_str_repr(jctx *c, outbuf *b, const char *s, size_t len) {
    bool has_single = memchr(s, '\'', len) != NULL, has_double = memchr(s, '"', len) != NULL;
    char quote = has_single && !has_double ? '"' : '\'';
    ob_putc(c, b, quote);
    for (size_t i = 0; i < len;) {
        int32_t cp;
        size_t k = u8_decode(s, len, i, &cp);
        char esc[16];
        if (cp == quote || cp == '\\') {
            esc[0] = '\\';
            esc[1] = (char)cp;
            ob_put(c, b, esc, 2);
        } else if (cp == '\t')
            ob_puts(c, b, "\\t");
        else if (cp == '\n')
            ob_puts(c, b, "\\n");
        else if (cp == '\r')
            ob_puts(c, b, "\\r");
        else if (cp < 0x20 || cp == 0x7f) {
            snprintf(esc, sizeof(esc), "\\x%02x", cp);
            ob_puts(c, b, esc);
        } else if (cp < 0x7f || py_isprintable(cp))
            ob_put(c, b, s + i, k);
        else {
            if (cp <= 0xff)
                snprintf(esc, sizeof(esc), "\\x%02x", cp);
            else if (cp <= 0xffff)
                snprintf(esc, sizeof(esc), "\\u%04x", cp);
            else
                snprintf(esc, sizeof(esc), "\\U%08x", cp);
            ob_puts(c, b, esc);
        }
        i += k;
    }
    ob_putc(c, b, quote);
}

void jv_write_repr(jctx *c, outbuf *b, const jv *v) {
    if (c->failed) return;
    if (c->depth > JJ_MAX_DEPTH) {
        jerr(c, "maximum recursion depth exceeded while getting the repr of an object");
        return;
    }
    switch (v->kind) {
    case JV_STR:
        write_str_repr(c, b, v->u.str.s, v->u.str.len);
        return;
    case JV_UNDEF:
        ob_puts(c, b, "Undefined");
        return;
    case JV_LIST: {
        const char *open = "[", *close = "]";
        switch (v->u.list.seq) {
        case SEQ_TUPLE:
            open = "(", close = ")";
            break;
        case SEQ_GEN:
            ob_puts(c, b, "<generator object>");
            return;
        case SEQ_ITEMS:
            open = "dict_items([", close = "])";
            break;
        case SEQ_KEYS:
            open = "dict_keys([", close = "])";
            break;
        case SEQ_VALUES:
            open = "dict_values([", close = "])";
            break;
        default:
            break;
        }
        ob_puts(c, b, open);
        c->depth++;
        for (size_t i = 0; i < v->u.list.n; i++) {
            if (i) ob_puts(c, b, ", ");
            jv_write_repr(c, b, v->u.list.v[i]);
        }
        c->depth--;
        if (v->u.list.seq == SEQ_TUPLE && v->u.list.n == 1) ob_putc(c, b, ',');
        ob_puts(c, b, close);
        return;
    }
    case JV_DICT:
    case JV_NS:
        if (v->kind == JV_NS) ob_puts(c, b, "<Namespace ");
        ob_putc(c, b, '{');
        c->depth++;
        for (size_t i = 0; i < v->u.dict.n; i++) {
            if (i) ob_puts(c, b, ", ");
            jv_write_repr(c, b, v->u.dict.k[i]);
            ob_puts(c, b, ": ");
            jv_write_repr(c, b, v->u.dict.v[i]);
        }
        c->depth--;
        ob_putc(c, b, '}');
        if (v->kind == JV_NS) ob_putc(c, b, '>');
        return;
    default:
        jv_write_str(c, b, v);
    }
}

void jv_write_str(jctx *c, outbuf *b, const jv *v) {
    char num[64];
    switch (v->kind) {
    case JV_UNDEF:
        return;
    case JV_NONE:
        ob_puts(c, b, "None");
        return;
    case JV_BOOL:
        ob_puts(c, b, v->u.b ? "True" : "False");
        return;
    case JV_INT:
        snprintf(num, sizeof(num), "%lld", v->u.i);
        ob_puts(c, b, num);
        return;
    case JV_FLOAT:
        py_float_repr(v->u.f, num, sizeof(num));
        ob_puts(c, b, num);
        return;
    case JV_STR:
        ob_put(c, b, v->u.str.s, v->u.str.len);
        return;
    case JV_FUNC:
        snprintf(num, sizeof(num), "<function %s>", v->u.fn.name ? v->u.fn.name : "?");
        ob_puts(c, b, num);
        return;
    case JV_LOOP:
        snprintf(num, sizeof(num), "<LoopContext %lld/%lld>", v->u.loop->i + 1, v->u.loop->n);
        ob_puts(c, b, num);
        return;
    default:
        jv_write_repr(c, b, v);
    }
}

static jv *buf_to_str(jctx *c, outbuf *b) {
    jv *r = jv_str(c, b->s ? b->s : "", b->len);
    ob_free(b);
    return r;
}

jv *jv_to_str(jctx *c, const jv *v) {
    if (v->kind == JV_STR) return (jv *)v;
    outbuf b = {0};
    jv_write_str(c, &b, v);
    return buf_to_str(c, &b);
}

jv *jv_repr(jctx *c, const jv *v) {
    outbuf b = {0};
    jv_write_repr(c, &b, v);
    return buf_to_str(c, &b);
}

/* ---- json.dumps ---- */
typedef struct json_opts {
    const char *indent; /* NULL: no newlines */
    const char *item_sep, *key_sep;
    bool ensure_ascii, sort_keys;
} json_opts;

static void json_write_string(jctx *c, outbuf *b, const char *s, size_t len, bool ascii) {
    ob_putc(c, b, '"');
    size_t run = 0; /* bytes copied in one go */
    for (size_t i = 0; i < len;) {
        unsigned char ch = (unsigned char)s[i];
        const char *esc = NULL;
        char ubuf[16];
        switch (ch) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        default:
            if (ch < 0x20) {
                snprintf(ubuf, sizeof(ubuf), "\\u%04x", ch);
                esc = ubuf;
            }
        }
        if (!esc && ascii && ch >= 0x80) {
            int32_t cp;
            size_t k = u8_decode(s, len, i, &cp);
            ob_put(c, b, s + i - run, run);
            run = 0;
            if (cp >= 0x10000) {
                int32_t v = cp - 0x10000;
                snprintf(ubuf, sizeof(ubuf), "\\u%04x\\u%04x", 0xd800 + (v >> 10),
                         0xdc00 + (v & 0x3ff));
            } else
                snprintf(ubuf, sizeof(ubuf), "\\u%04x", cp);
            ob_puts(c, b, ubuf);
            i += k;
            continue;
        }
        if (esc) {
            ob_put(c, b, s + i - run, run);
            run = 0;
            ob_puts(c, b, esc);
        } else
            run++;
        i++;
    }
    ob_put(c, b, s + len - run, run);
    ob_putc(c, b, '"');
}

static void json_newline(jctx *c, outbuf *b, const json_opts *o, int level) {
    ob_putc(c, b, '\n');
    for (int i = 0; i < level; i++) ob_puts(c, b, o->indent);
}

static int cmp_keys_for_sort(const void *pa, const void *pb, void *arg) {
    (void)arg;
    const jv *a = *(jv *const *)pa, *b = *(jv *const *)pb;
    size_t n = a->u.str.len < b->u.str.len ? a->u.str.len : b->u.str.len;
    int r = memcmp(a->u.str.s, b->u.str.s, n);
    return r ? r : (a->u.str.len > b->u.str.len) - (a->u.str.len < b->u.str.len);
}

static void json_write(jctx *c, outbuf *b, const jv *v, const json_opts *o, int level) {
    char num[64];
    if (c->failed) return;
    if (level > JJ_MAX_DEPTH) {
        jerr(c, "maximum recursion depth exceeded while encoding a JSON object");
        return;
    }
    switch (v->kind) {
    case JV_NONE:
        ob_puts(c, b, "null");
        return;
    case JV_BOOL:
        ob_puts(c, b, v->u.b ? "true" : "false");
        return;
    case JV_INT:
        jv_write_str(c, b, v);
        return;
    case JV_FLOAT:
        if (isnan(v->u.f))
            ob_puts(c, b, "NaN");
        else if (isinf(v->u.f))
            ob_puts(c, b, v->u.f < 0 ? "-Infinity" : "Infinity");
        else {
            py_float_repr(v->u.f, num, sizeof(num));
            ob_puts(c, b, num);
        }
        return;
    case JV_STR:
        json_write_string(c, b, v->u.str.s, v->u.str.len, o->ensure_ascii);
        return;
    case JV_LIST:
        if (v->u.list.seq == SEQ_LIST || v->u.list.seq == SEQ_TUPLE) {
            if (!v->u.list.n) {
                ob_puts(c, b, "[]");
                return;
            }
            ob_putc(c, b, '[');
            for (size_t i = 0; i < v->u.list.n; i++) {
                if (i) ob_puts(c, b, o->item_sep);
                if (o->indent) json_newline(c, b, o, level + 1);
                json_write(c, b, v->u.list.v[i], o, level + 1);
            }
            if (o->indent) json_newline(c, b, o, level);
            ob_putc(c, b, ']');
            return;
        }
        break;
    case JV_DICT: {
        if (!v->u.dict.n) {
            ob_puts(c, b, "{}");
            return;
        }
        size_t n = v->u.dict.n;
        /* keys become strings first, as json.dumps does; sorting works on those */
        jv **keys = arena_alloc(&c->ar, n * sizeof(jv *));
        jv **order = arena_alloc(&c->ar, n * 2 * sizeof(jv *));
        for (size_t i = 0; i < n; i++) {
            const jv *k = v->u.dict.k[i];
            if (k->kind == JV_STR)
                keys[i] = (jv *)k;
            else if (k->kind == JV_BOOL)
                keys[i] = jv_cstr(c, k->u.b ? "true" : "false");
            else if (k->kind == JV_NONE)
                keys[i] = jv_cstr(c, "null");
            else if (k->kind == JV_INT || k->kind == JV_FLOAT)
                keys[i] = jv_to_str(c, k);
            else {
                jerr(c, "keys must be str, int, float, bool or None, not %s", jv_type_name(k));
                return;
            }
            order[2 * i] = keys[i];
            order[2 * i + 1] = v->u.dict.v[i];
        }
        if (o->sort_keys) qsort_r(order, n, 2 * sizeof(jv *), cmp_keys_for_sort, NULL);
        ob_putc(c, b, '{');
        for (size_t i = 0; i < n; i++) {
            if (i) ob_puts(c, b, o->item_sep);
            if (o->indent) json_newline(c, b, o, level + 1);
            jv *k = order[2 * i];
            json_write_string(c, b, k->u.str.s, k->u.str.len, o->ensure_ascii);
            ob_puts(c, b, o->key_sep);
            json_write(c, b, order[2 * i + 1], o, level + 1);
        }
        if (o->indent) json_newline(c, b, o, level);
        ob_putc(c, b, '}');
        return;
    }
    default:
        break;
    }
    jerr(c, "Object of type %s is not JSON serializable", jv_type_name(v));
}

jv *jv_tojson(jctx *c, const jv *v, const jv *indent, const char *item_sep, const char *key_sep,
              bool ensure_ascii, bool sort_keys) {
    json_opts o = {.ensure_ascii = ensure_ascii, .sort_keys = sort_keys};
    if (indent && indent->kind != JV_NONE && indent->kind != JV_UNDEF) {
        if (indent->kind == JV_STR)
            o.indent = arena_strndup(&c->ar, indent->u.str.s, indent->u.str.len);
        else if (indent->kind == JV_INT || indent->kind == JV_BOOL) {
            long long k = indent->kind == JV_INT ? indent->u.i : indent->u.b;
            if (k < 0) k = 0;
            if (k > 1000) k = 1000;
            char *sp = arena_alloc(&c->ar, (size_t)k + 1);
            memset(sp, ' ', (size_t)k);
            o.indent = sp;
        } else {
            jerr(c, "tojson: indent must be an integer or a string, not %s", jv_type_name(indent));
            return JV_UNDEFINED;
        }
    }
    o.item_sep = item_sep ? item_sep : o.indent ? "," : ", ";
    o.key_sep = key_sep ? key_sep : ": ";
    outbuf b = {0};
    json_write(c, &b, v, &o, 0);
    return buf_to_str(c, &b);
}
