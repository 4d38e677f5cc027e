/*
 * jinja_filters.c — Jinja2's built-in filters and tests as real chat templates use them, the
 * globals transformers adds (raise_exception, strftime_now) and Jinja's own (range, dict,
 * namespace). tojson is transformers' version: json.dumps(ensure_ascii=False) without
 * Jinja's HTML escaping. Filters that return generators in Jinja2 (map, select, ...) return
 * generator-flavoured lists, so |length on them fails as it does in Python.
 */
#include "text/jinja_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FILTER(fname) static jv *fname(jctx *c, jv *v, jargs *a)
#define TEST(fname)   static int fname(jctx *c, jv *v, jargs *a)
#define BIND(fname, ...)                                                                           \
    static const char *const names_[] = {__VA_ARGS__};                                             \
    jv *arg[ARRAY_LEN(names_)];                                                                    \
    if (!bind_args(c, fname, a, names_, (int)ARRAY_LEN(names_), arg)) return JV_UNDEFINED
#define NOARGS(fname)                                                                              \
    if (a->npos || a->nkw) {                                                                       \
        jerr(c, "%s() takes no arguments", fname);                                                 \
        return JV_UNDEFINED;                                                                       \
    }

static bool is_int_like(const jv *v) {
    return v->kind == JV_INT || v->kind == JV_BOOL;
}
static long long int_of(const jv *v) {
    return v->kind == JV_INT ? v->u.i : v->u.b;
}

static jv *gen_list(jctx *c) {
    return jv_list(c, SEQ_GEN, 0);
}

static jv *items_of(jctx *c, jv *v) {
    return jinja_iter(c, v);
}

/* make_attrgetter: "a.b.0" looks up item by item */
static jv *get_path(jctx *c, jv *item, jv *attr) {
    if (is_int_like(attr)) return jinja_getitem(c, item, attr);
    if (attr->kind != JV_STR) {
        jerr(c, "attribute must be a string or an integer");
        return JV_UNDEFINED;
    }
    const char *p = attr->u.str.s, *end = p + attr->u.str.len;
    while (!c->failed) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t n = dot ? (size_t)(dot - p) : (size_t)(end - p);
        jv *key;
        bool digits = n > 0;
        for (size_t i = 0; i < n; i++) digits &= p[i] >= '0' && p[i] <= '9';
        key = digits ? jv_int(c, strtoll(p, NULL, 10)) : jv_strref(c, p, n);
        item = jinja_getitem(c, item, key);
        if (!dot) break;
        p = dot + 1;
    }
    return item;
}

static jv *lower_if_str(jctx *c, jv *v, bool case_sensitive) {
    return !case_sensitive && v->kind == JV_STR ? py_str_lower(c, v) : v;
}

/* ---- stable sort on keys ---- */
typedef struct sort_item {
    jv *key, *val;
} sort_item;

static void merge_sort(jctx *c, sort_item *x, sort_item *tmp, size_t n, bool reverse) {
    if (n < 2 || c->failed) return;
    size_t h = n / 2;
    merge_sort(c, x, tmp, h, reverse);
    merge_sort(c, x + h, tmp, n - h, reverse);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n && !c->failed) {
        /* take from the right only when it is strictly smaller (stable) */
        int lt = reverse ? py_compare(c, OP_LT, x[i].key, x[j].key)
                         : py_compare(c, OP_LT, x[j].key, x[i].key);
        if (lt < 0) return;
        tmp[k++] = lt ? x[j++] : x[i++];
    }
    while (i < h) tmp[k++] = x[i++];
    while (j < n) tmp[k++] = x[j++];
    memcpy(x, tmp, n * sizeof(*x));
}

static jv *sorted(jctx *c, jv *items, jv *(*keyf)(jctx *, jv *, void *), void *ctx, bool reverse) {
    size_t n = items->u.list.n;
    sort_item *x = arena_alloc(&c->ar, (n + 1) * sizeof(*x));
    sort_item *tmp = arena_alloc(&c->ar, (n + 1) * sizeof(*x));
    for (size_t i = 0; i < n && !c->failed; i++) {
        x[i].val = items->u.list.v[i];
        x[i].key = keyf(c, x[i].val, ctx);
    }
    merge_sort(c, x, tmp, n, reverse);
    jv *out = jv_list(c, SEQ_LIST, n);
    for (size_t i = 0; i < n; i++) jv_list_push(c, out, x[i].val);
    return out;
}

typedef struct sort_opts {
    jv *attribute;
    bool case_sensitive;
    int by_value; /* dictsort: -1 not a pair, 0 key, 1 value */
} sort_opts;

static jv *sort_key(jctx *c, jv *item, void *ctx) {
    sort_opts *o = ctx;
    if (o->by_value >= 0) item = item->u.list.v[o->by_value];
    if (o->attribute) item = get_path(c, item, o->attribute);
    return lower_if_str(c, item, o->case_sensitive);
}

/* ---- filters ---- */
FILTER(f_abs) {
    NOARGS("abs");
    if (v->kind == JV_INT || v->kind == JV_BOOL) return jv_int(c, llabs(int_of(v)));
    if (v->kind == JV_FLOAT) return jv_float(c, fabs(v->u.f));
    jerr(c, "bad operand type for abs(): '%s'", jv_type_name(v));
    return JV_UNDEFINED;
}

FILTER(f_attr) {
    BIND("attr", "name");
    if (!arg[0] || arg[0]->kind != JV_STR) {
        jerr(c, "attr() needs a name");
        return JV_UNDEFINED;
    }
    return jinja_getattr(c, v, arg[0]->u.str.s, arg[0]->u.str.len);
}

FILTER(f_batch) {
    BIND("batch", "linecount", "fill_with");
    if (!arg[0] || !is_int_like(arg[0]) || int_of(arg[0]) <= 0) {
        jerr(c, "batch() needs a positive line count");
        return JV_UNDEFINED;
    }
    long long n = int_of(arg[0]);
    jv *items = items_of(c, v);
    if (!items) return JV_UNDEFINED;
    jv *out = gen_list(c), *cur = NULL;
    for (size_t i = 0; i < items->u.list.n; i++) {
        if (!cur || (long long)cur->u.list.n == n) {
            cur = jv_list(c, SEQ_LIST, 0);
            jv_list_push(c, out, cur);
        }
        jv_list_push(c, cur, items->u.list.v[i]);
    }
    if (cur && arg[1] && arg[1]->kind != JV_NONE)
        while ((long long)cur->u.list.n < n) jv_list_push(c, cur, arg[1]);
    return out;
}

FILTER(f_capitalize) {
    NOARGS("capitalize");
    return py_str_capitalize(c, jv_to_str(c, v));
}

FILTER(f_center) {
    BIND("center", "width");
    jv *s = jv_to_str(c, v);
    long long w = arg[0] && is_int_like(arg[0]) ? int_of(arg[0]) : 80;
    long long len = (long long)u8_count(s->u.str.s, s->u.str.len);
    if (w > JJ_MAX_OUTPUT) w = JJ_MAX_OUTPUT;
    if (w <= len) return s;
    long long pad = w - len, left = pad / 2 + (pad & w & 1);
    outbuf b = {0};
    for (long long i = 0; i < left; i++) ob_putc(c, &b, ' ');
    ob_put(c, &b, s->u.str.s, s->u.str.len);
    for (long long i = left; i < pad; i++) ob_putc(c, &b, ' ');
    jv *r = jv_str(c, b.s, b.len);
    ob_free(&b);
    return r;
}

FILTER(f_default) {
    BIND("default", "default_value", "boolean");
    bool boolean = arg[1] && jv_truthy(arg[1]);
    if (v->kind == JV_UNDEF || (boolean && !jv_truthy(v)))
        return arg[0] ? arg[0] : jv_strref(c, "", 0);
    return v;
}

FILTER(f_dictsort) {
    BIND("dictsort", "case_sensitive", "by", "reverse");
    if (v->kind != JV_DICT) {
        jerr(c, "dictsort: %s object has no attribute 'items'", jv_type_name(v));
        return JV_UNDEFINED;
    }
    sort_opts o = {.case_sensitive = arg[0] && jv_truthy(arg[0]), .by_value = 0};
    if (arg[1] && arg[1]->kind == JV_STR) {
        if (arg[1]->u.str.len == 5 && !memcmp(arg[1]->u.str.s, "value", 5))
            o.by_value = 1;
        else if (!(arg[1]->u.str.len == 3 && !memcmp(arg[1]->u.str.s, "key", 3))) {
            jerr(c, "You can only sort by either \"key\" or \"value\"");
            return JV_UNDEFINED;
        }
    }
    jv *pairs = jv_list(c, SEQ_LIST, v->u.dict.n);
    for (size_t i = 0; i < v->u.dict.n; i++) {
        jv *t = jv_list(c, SEQ_TUPLE, 2);
        jv_list_push(c, t, v->u.dict.k[i]);
        jv_list_push(c, t, v->u.dict.v[i]);
        jv_list_push(c, pairs, t);
    }
    return sorted(c, pairs, sort_key, &o, arg[2] && jv_truthy(arg[2]));
}

FILTER(f_escape) {
    NOARGS("escape");
    if (v->kind == JV_STR && v->u.str.safe) return v;
    return html_escape(c, jv_to_str(c, v));
}

FILTER(f_forceescape) {
    NOARGS("forceescape");
    return html_escape(c, jv_to_str(c, v));
}

FILTER(f_first) {
    NOARGS("first");
    jv *items = items_of(c, v);
    if (!items) return JV_UNDEFINED;
    return items->u.list.n ? items->u.list.v[0] : jv_undef(c, "No first item, sequence was empty.");
}

FILTER(f_last) {
    NOARGS("last");
    if (v->kind == JV_LIST && v->u.list.seq == SEQ_GEN) {
        jerr(c, "'generator' object is not reversible");
        return JV_UNDEFINED;
    }
    jv *items = items_of(c, v);
    if (!items) return JV_UNDEFINED;
    return items->u.list.n ? items->u.list.v[items->u.list.n - 1]
                           : jv_undef(c, "No last item, sequence was empty.");
}

static bool parse_py_float(jv *s, double *out) {
    char buf[128];
    jv tmp = *s;
    size_t a = 0, z = tmp.u.str.len;
    while (a < z && (tmp.u.str.s[a] == ' ' || tmp.u.str.s[a] == '\t' || tmp.u.str.s[a] == '\n'))
        a++;
    while (z > a &&
           (tmp.u.str.s[z - 1] == ' ' || tmp.u.str.s[z - 1] == '\t' || tmp.u.str.s[z - 1] == '\n'))
        z--;
    if (z - a == 0 || z - a >= sizeof(buf)) return false;
    /* strtod reads hex floats, Python's float() does not */
    if (memchr(tmp.u.str.s + a, 'x', z - a) || memchr(tmp.u.str.s + a, 'X', z - a)) return false;
    size_t n = 0;
    for (size_t i = a; i < z; i++)
        if (tmp.u.str.s[i] != '_') buf[n++] = tmp.u.str.s[i];
    buf[n] = 0;
    char *end;
    *out = strtod(buf, &end);
    return *end == 0;
}

FILTER(f_float) {
    BIND("float", "default");
    jv *dflt = arg[0] ? arg[0] : jv_float(c, 0.0);
    double f;
    if (v->kind == JV_UNDEF) return jerr_undef(c, v); /* float(Undefined) fails */
    if (v->kind == JV_FLOAT) return v;
    if (is_int_like(v)) return jv_float(c, (double)int_of(v));
    if (v->kind == JV_STR && parse_py_float(v, &f)) return jv_float(c, f);
    return dflt;
}

FILTER(f_int) {
    BIND("int", "default", "base");
    jv *dflt = arg[0] ? arg[0] : jv_int(c, 0);
    int base = arg[1] && is_int_like(arg[1]) ? (int)int_of(arg[1]) : 10;
    if (v->kind == JV_UNDEF) return jerr_undef(c, v); /* int(Undefined) fails */
    if (is_int_like(v)) return jv_int(c, int_of(v));
    if (v->kind == JV_FLOAT) {
        if (!isfinite(v->u.f)) return dflt;
        return jv_int(c, (long long)v->u.f);
    }
    if (v->kind == JV_STR) {
        char buf[128];
        if (v->u.str.len < sizeof(buf)) {
            size_t n = 0;
            for (size_t i = 0; i < v->u.str.len; i++)
                if (v->u.str.s[i] != '_') buf[n++] = v->u.str.s[i];
            buf[n] = 0;
            char *end;
            long long r = strtoll(buf, &end, base);
            while (*end == ' ' || *end == '\n' || *end == '\t') end++;
            if (n && !*end) return jv_int(c, r);
            double f;
            if (parse_py_float(v, &f) && isfinite(f)) return jv_int(c, (long long)f);
        }
    }
    return dflt;
}

FILTER(f_format) {
    jv *s = jv_to_str(c, v);
    if (a->nkw && a->npos) {
        jerr(c, "can't handle positional and keyword arguments at the same time");
        return JV_UNDEFINED;
    }
    jv *args;
    if (a->nkw) {
        args = jv_dict(c);
        for (int i = 0; i < a->nkw; i++) jv_dict_set(c, args, jv_cstr(c, a->kwn[i]), a->kwv[i]);
    } else {
        args = jv_list(c, SEQ_TUPLE, (size_t)a->npos);
        for (int i = 0; i < a->npos; i++) jv_list_push(c, args, a->pos[i]);
    }
    return py_percent_format(c, s, args);
}

/* Python's str.splitlines() boundaries, as Jinja's indent filter uses them */
static jv *splitlines(jctx *c, jv *s) {
    jargs none = {0};
    jv *m = jinja_getattr(c, s, "splitlines", 10);
    return jinja_call(c, m, &none);
}

FILTER(f_indent) {
    BIND("indent", "width", "first", "blank");
    jv *s = jv_to_str(c, v);
    outbuf ind = {0};
    if (arg[0] && arg[0]->kind == JV_STR)
        ob_put(c, &ind, arg[0]->u.str.s, arg[0]->u.str.len);
    else {
        long long w = arg[0] ? (is_int_like(arg[0]) ? int_of(arg[0]) : -1) : 4;
        if (w < 0 || w > 10000) {
            ob_free(&ind);
            jerr(c, "indent width must be an integer or a string");
            return JV_UNDEFINED;
        }
        for (long long i = 0; i < w; i++) ob_putc(c, &ind, ' ');
    }
    bool first = arg[1] && jv_truthy(arg[1]), blank = arg[2] && jv_truthy(arg[2]);
    /* s += "\n" so splitlines keeps a trailing empty line */
    jv *nl = py_binop(c, OP_ADD, s, jv_strref(c, "\n", 1));
    jv *lines = splitlines(c, nl);
    outbuf b = {0};
    if (first) ob_put(c, &b, ind.s ? ind.s : "", ind.len);
    for (size_t i = 0; lines && i < lines->u.list.n && !c->failed; i++) {
        jv *ln = lines->u.list.v[i];
        if (i) {
            ob_putc(c, &b, '\n');
            if (blank || ln->u.str.len) ob_put(c, &b, ind.s ? ind.s : "", ind.len);
        }
        ob_put(c, &b, ln->u.str.s, ln->u.str.len);
    }
    ob_free(&ind);
    jv *r = jv_str(c, b.s ? b.s : "", b.len);
    ob_free(&b);
    return r;
}

FILTER(f_items) {
    NOARGS("items");
    if (v->kind == JV_UNDEF) return gen_list(c);
    if (v->kind != JV_DICT) {
        jerr(c, "Can only get item pairs from a mapping.");
        return JV_UNDEFINED;
    }
    jv *out = gen_list(c);
    for (size_t i = 0; i < v->u.dict.n; i++) {
        jv *t = jv_list(c, SEQ_TUPLE, 2);
        jv_list_push(c, t, v->u.dict.k[i]);
        jv_list_push(c, t, v->u.dict.v[i]);
        jv_list_push(c, out, t);
    }
    return out;
}

FILTER(f_join) {
    BIND("join", "d", "attribute");
    jv *items = items_of(c, v);
    if (!items) return JV_UNDEFINED;
    jv *sep = arg[0] ? jv_to_str(c, arg[0]) : jv_strref(c, "", 0);
    outbuf b = {0};
    for (size_t i = 0; i < items->u.list.n && !c->failed; i++) {
        jv *it = items->u.list.v[i];
        if (arg[1]) it = get_path(c, it, arg[1]);
        if (i) ob_put(c, &b, sep->u.str.s, sep->u.str.len);
        jv_write_str(c, &b, it);
    }
    jv *r = jv_str(c, b.s ? b.s : "", b.len);
    ob_free(&b);
    return r;
}

FILTER(f_length) {
    NOARGS("length");
    long long n = py_len(c, v);
    return n < 0 ? JV_UNDEFINED : jv_int(c, n);
}

FILTER(f_list) {
    NOARGS("list");
    jv *items = items_of(c, v);
    if (!items) return JV_UNDEFINED;
    jv *out = jv_list(c, SEQ_LIST, items->u.list.n);
    for (size_t i = 0; i < items->u.list.n; i++) jv_list_push(c, out, items->u.list.v[i]);
    return out;
}

FILTER(f_lower) {
    NOARGS("lower");
    return py_str_lower(c, jv_to_str(c, v));
}
FILTER(f_upper) {
    NOARGS("upper");
    return py_str_upper(c, jv_to_str(c, v));
}

/* Jinja's title filter: words start after whitespace, '-', and opening brackets */
FILTER(f_title) {
    NOARGS("title");
    jv *s = jv_to_str(c, v);
    outbuf b = {0};
    bool at_start = true;
    for (size_t i = 0; i < s->u.str.len;) {
        int32_t cp;
        size_t k = u8_decode(s->u.str.s, s->u.str.len, i, &cp);
        bool sep = py_isspace(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<';
        jv one = {.kind = JV_STR, .u.str = {s->u.str.s + i, k}};
        jv *m = sep ? &one : at_start ? py_str_upper(c, &one) : py_str_lower(c, &one);
        if (!sep && at_start) {
            /* first character of a word: title case */
            m = py_str_title(c, &one);
        }
        ob_put(c, &b, m->u.str.s, m->u.str.len);
        at_start = sep;
        i += k;
    }
    jv *r = jv_str(c, b.s ? b.s : "", b.len);
    ob_free(&b);
    return r;
}

static int run_test(jctx *c, jv *item, const char *name, jv **extra, int nextra);

static jv *select_common(jctx *c, jv *v, jargs *a, bool by_attr, bool keep) {
    if (!jv_truthy(v)) return gen_list(c); /* Jinja2: `if value:` guards the loop */
    jv *items = items_of(c, v);
    if (!items) return JV_UNDEFINED;
    if (!items->u.list.n) return gen_list(c); /* lazy in Jinja2: no items, no checks */
    int k = 0;
    jv *attr = NULL;
    if (by_attr) {
        if (a->npos < 1) {
            jerr(c, "selectattr/rejectattr need an attribute name");
            return JV_UNDEFINED;
        }
        attr = a->pos[k++];
    }
    const char *test = NULL;
    if (k < a->npos) {
        jv *t = a->pos[k++];
        if (t->kind != JV_STR) {
            jerr(c, "test name must be a string");
            return JV_UNDEFINED;
        }
        test = arena_strndup(&c->ar, t->u.str.s, t->u.str.len);
        if (!jinja_find_test(test)) {
            jerr(c, "no test named '%s'", test);
            return JV_UNDEFINED;
        }
    }
    jv *out = gen_list(c);
    for (size_t i = 0; i < items->u.list.n && !c->failed; i++) {
        jv *it = items->u.list.v[i];
        jv *x = attr ? get_path(c, it, attr) : it;
        if (c->failed) break;
        int r = test ? run_test(c, x, test, a->pos + k, a->npos - k) : jv_truthy(x);
        if (r < 0) break;
        if (r == keep) jv_list_push(c, out, it);
    }
    return out;
}
FILTER(f_select) {
    return select_common(c, v, a, false, true);
}
FILTER(f_reject) {
    return select_common(c, v, a, false, false);
}
FILTER(f_selectattr) {
    return select_common(c, v, a, true, true);
}
FILTER(f_rejectattr) {
    return select_common(c, v, a, true, false);
}

FILTER(f_map) {
    if (!jv_truthy(v)) return gen_list(c);
    jv *items = items_of(c, v);
    if (!items) return JV_UNDEFINED;
    jv *out = gen_list(c);
    jv *attr = NULL, *dflt = NULL;
    for (int i = 0; i < a->nkw; i++) {
        if (!strcmp(a->kwn[i], "attribute"))
            attr = a->kwv[i];
        else if (!strcmp(a->kwn[i], "default"))
            dflt = a->kwv[i];
        else {
            jerr(c, "map: unexpected keyword argument '%s'", a->kwn[i]);
            return JV_UNDEFINED;
        }
    }
    if (attr) {
        for (size_t i = 0; i < items->u.list.n && !c->failed; i++) {
            jv *x = get_path(c, items->u.list.v[i], attr);
            if (dflt && x->kind == JV_UNDEF) x = dflt;
            jv_list_push(c, out, x);
        }
        return out;
    }
    /* Jinja2's map is a lazy generator: with nothing to map, nothing is looked up */
    if (!items->u.list.n) return out;
    if (a->npos < 1 || a->pos[0]->kind != JV_STR) {
        jerr(c, "map requires a filter argument");
        return JV_UNDEFINED;
    }
    char *name = arena_strndup(&c->ar, a->pos[0]->u.str.s, a->pos[0]->u.str.len);
    jfilter f = jinja_find_filter(name);
    if (!f) {
        jerr(c, "no filter named '%s'", name);
        return JV_UNDEFINED;
    }
    jargs rest = {a->pos + 1, a->npos - 1, NULL, NULL, 0};
    for (size_t i = 0; i < items->u.list.n && !c->failed; i++)
        jv_list_push(c, out, f(c, items->u.list.v[i], &rest));
    return out;
}

static jv *minmax(jctx *c, jv *v, jargs *a, bool want_max) {
    BIND(want_max ? "max" : "min", "case_sensitive", "attribute");
    jv *items = items_of(c, v);
    if (!items) return JV_UNDEFINED;
    if (!items->u.list.n) return jv_undef(c, "No aggregated item, sequence was empty.");
    sort_opts o = {
        .attribute = arg[1], .case_sensitive = arg[0] && jv_truthy(arg[0]), .by_value = -1};
    jv *best = items->u.list.v[0], *bk = sort_key(c, best, &o);
    for (size_t i = 1; i < items->u.list.n && !c->failed; i++) {
        jv *k = sort_key(c, items->u.list.v[i], &o);
        int r = py_compare(c, want_max ? OP_GT : OP_LT, k, bk);
        if (r < 0) return JV_UNDEFINED;
        if (r) {
            best = items->u.list.v[i];
            bk = k;
        }
    }
    return best;
}
FILTER(f_max) {
    return minmax(c, v, a, true);
}
FILTER(f_min) {
    return minmax(c, v, a, false);
}

FILTER(f_replace) {
    BIND("replace", "old", "new", "count");
    if (!arg[0] || !arg[1]) {
        jerr(c, "replace() needs old and new");
        return JV_UNDEFINED;
    }
    jv *s = jv_to_str(c, v);
    long long count = arg[2] && is_int_like(arg[2]) ? int_of(arg[2]) : -1;
    return py_str_replace(c, s, jv_to_str(c, arg[0]), jv_to_str(c, arg[1]), count);
}

FILTER(f_reverse) {
    NOARGS("reverse");
    if (v->kind == JV_STR) return jinja_slice(c, v, JV_NONEV, JV_NONEV, jv_int(c, -1));
    if (v->kind == JV_LIST && v->u.list.seq == SEQ_GEN) {
        jerr(c, "argument to reverse filter must be iterable");
        return JV_UNDEFINED;
    }
    jv *items = items_of(c, v);
    if (!items) return JV_UNDEFINED;
    jv *out = gen_list(c);
    for (size_t i = items->u.list.n; i-- > 0;) jv_list_push(c, out, items->u.list.v[i]);
    return out;
}

FILTER(f_round) {
    BIND("round", "precision", "method");
    long long prec = arg[0] && is_int_like(arg[0]) ? int_of(arg[0]) : 0;
    const char *method = "common";
    if (arg[1] && arg[1]->kind == JV_STR)
        method = arena_strndup(&c->ar, arg[1]->u.str.s, arg[1]->u.str.len);
    if (strcmp(method, "common") && strcmp(method, "ceil") && strcmp(method, "floor")) {
        jerr(c, "method must be common, ceil or floor");
        return JV_UNDEFINED;
    }
    if (is_int_like(v) && !strcmp(method, "common")) return jv_int(c, int_of(v));
    if (!is_int_like(v) && v->kind != JV_FLOAT) {
        jerr(c, "type %s doesn't define __round__ method", jv_type_name(v));
        return JV_UNDEFINED;
    }
    double x = v->kind == JV_FLOAT ? v->u.f : (double)int_of(v), m = pow(10.0, (double)prec);
    double r;
    if (!strcmp(method, "ceil"))
        r = ceil(x * m) / m;
    else if (!strcmp(method, "floor"))
        r = floor(x * m) / m;
    else {
        /* Python's round(): correctly rounded, halves to even */
        char buf[64];
        snprintf(buf, sizeof(buf), "%.*f", prec < 0 ? 0 : (int)(prec > 30 ? 30 : prec), x);
        r = prec >= 0 ? strtod(buf, NULL) : nearbyint(x * m) / m;
    }
    return jv_float(c, r);
}

FILTER(f_safe) {
    NOARGS("safe");
    jv *s = jv_to_str(c, v);
    jv *r = jv_strref(c, s->u.str.s, s->u.str.len);
    r->u.str.safe = true;
    return r;
}

FILTER(f_sort) {
    BIND("sort", "reverse", "case_sensitive", "attribute");
    if (arg[0] && arg[0]->kind == JV_UNDEF) return jerr_undef(c, arg[0]); /* sorted(reverse=) */
    jv *items = items_of(c, v);
    if (!items) return JV_UNDEFINED;
    sort_opts o = {
        .attribute = arg[2], .case_sensitive = arg[1] && jv_truthy(arg[1]), .by_value = -1};
    return sorted(c, items, sort_key, &o, arg[0] && jv_truthy(arg[0]));
}

FILTER(f_string) {
    NOARGS("string");
    return jv_to_str(c, v);
}

FILTER(f_sum) {
    BIND("sum", "attribute", "start");
    jv *items = items_of(c, v);
    if (!items) return JV_UNDEFINED;
    jv *total = arg[1] ? arg[1] : jv_int(c, 0);
    for (size_t i = 0; i < items->u.list.n && !c->failed; i++) {
        jv *x = arg[0] ? get_path(c, items->u.list.v[i], arg[0]) : items->u.list.v[i];
        total = py_binop(c, OP_ADD, total, x);
    }
    return total;
}

FILTER(f_tojson) {
    BIND("tojson", "ensure_ascii", "indent", "separators", "sort_keys");
    const char *item_sep = NULL, *key_sep = NULL;
    if (arg[2] && arg[2]->kind != JV_NONE) {
        jv *s = arg[2];
        if (!jv_is_seq(s) || s->u.list.n != 2 || s->u.list.v[0]->kind != JV_STR ||
            s->u.list.v[1]->kind != JV_STR) {
            jerr(c, "tojson: separators must be a pair of strings");
            return JV_UNDEFINED;
        }
        item_sep = arena_strndup(&c->ar, s->u.list.v[0]->u.str.s, s->u.list.v[0]->u.str.len);
        key_sep = arena_strndup(&c->ar, s->u.list.v[1]->u.str.s, s->u.list.v[1]->u.str.len);
    }
    return jv_tojson(c, v, arg[1], item_sep, key_sep, arg[0] && jv_truthy(arg[0]),
                     arg[3] && jv_truthy(arg[3]));
}

FILTER(f_trim) {
    BIND("trim", "chars");
    jv *chars = arg[0] && arg[0]->kind == JV_STR ? arg[0] : NULL;
    return py_str_strip(c, jv_to_str(c, v), chars, true, true);
}

FILTER(f_truncate) {
    BIND("truncate", "length", "killwords", "end", "leeway");
    jv *s = jv_to_str(c, v);
    long long length = arg[0] && is_int_like(arg[0]) ? int_of(arg[0]) : 255;
    bool killwords = arg[1] && jv_truthy(arg[1]);
    jv *end = arg[2] ? jv_to_str(c, arg[2]) : jv_strref(c, "...", 3);
    long long leeway = arg[3] && is_int_like(arg[3]) ? int_of(arg[3]) : 5;
    long long n = (long long)u8_count(s->u.str.s, s->u.str.len);
    long long endn = (long long)u8_count(end->u.str.s, end->u.str.len);
    if (length < endn) {
        jerr(c, "expected length >= %lld, got %lld", endn, length);
        return JV_UNDEFINED;
    }
    if (n <= length + leeway) return s;
    jv *cut = jinja_slice(c, s, JV_NONEV, jv_int(c, length - endn), JV_NONEV);
    if (!killwords) {
        /* s[:length-len(end)].rsplit(" ", 1)[0] */
        jv *parts = py_str_split(c, cut, jv_strref(c, " ", 1), 1, true);
        cut = parts->u.list.v[0];
    }
    return py_binop(c, OP_ADD, cut, end);
}

FILTER(f_unique) {
    BIND("unique", "case_sensitive", "attribute");
    jv *items = items_of(c, v);
    if (!items) return JV_UNDEFINED;
    sort_opts o = {
        .attribute = arg[1], .case_sensitive = arg[0] && jv_truthy(arg[0]), .by_value = -1};
    jv *seen = jv_list(c, SEQ_LIST, 0), *out = gen_list(c);
    for (size_t i = 0; i < items->u.list.n && !c->failed; i++) {
        jv *k = sort_key(c, items->u.list.v[i], &o);
        bool dup = false;
        for (size_t j = 0; j < seen->u.list.n && !dup; j++) dup = jv_eq(seen->u.list.v[j], k);
        if (dup) continue;
        jv_list_push(c, seen, k);
        jv_list_push(c, out, items->u.list.v[i]);
    }
    return out;
}

FILTER(f_wordcount) {
    NOARGS("wordcount");
    jv *s = jv_to_str(c, v);
    long long n = 0;
    bool in_word = false;
    for (size_t i = 0; i < s->u.str.len;) {
        int32_t cp;
        i += u8_decode(s->u.str.s, s->u.str.len, i, &cp);
        /* \w: letters, digits, underscore */
        bool w = cp == '_' || (cp >= '0' && cp <= '9') ||
                 ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') ||
                 (cp >= 0x80 && !py_isspace(cp) && py_isprintable(cp));
        if (w && !in_word) n++;
        in_word = w;
    }
    return jv_int(c, n);
}

FILTER(f_pprint) {
    NOARGS("pprint");
    return jv_repr(c, v);
}

typedef struct named_filter {
    const char *name;
    jfilter fn;
} named_filter;

static const named_filter filters[] = {
    {"abs", f_abs},
    {"attr", f_attr},
    {"batch", f_batch},
    {"capitalize", f_capitalize},
    {"center", f_center},
    {"count", f_length},
    {"d", f_default},
    {"default", f_default},
    {"dictsort", f_dictsort},
    {"e", f_escape},
    {"escape", f_escape},
    {"first", f_first},
    {"float", f_float},
    {"forceescape", f_forceescape},
    {"format", f_format},
    {"indent", f_indent},
    {"int", f_int},
    {"items", f_items},
    {"join", f_join},
    {"last", f_last},
    {"length", f_length},
    {"list", f_list},
    {"lower", f_lower},
    {"map", f_map},
    {"max", f_max},
    {"min", f_min},
    {"pprint", f_pprint},
    {"reject", f_reject},
    {"rejectattr", f_rejectattr},
    {"replace", f_replace},
    {"reverse", f_reverse},
    {"round", f_round},
    {"safe", f_safe},
    {"select", f_select},
    {"selectattr", f_selectattr},
    {"sort", f_sort},
    {"string", f_string},
    {"sum", f_sum},
    {"title", f_title},
    {"tojson", f_tojson},
    {"trim", f_trim},
    {"truncate", f_truncate},
    {"unique", f_unique},
    {"upper", f_upper},
    {"wordcount", f_wordcount},
};

jfilter jinja_find_filter(const char *name) {
    for (size_t i = 0; i < ARRAY_LEN(filters); i++)
        if (!strcmp(filters[i].name, name)) return filters[i].fn;
    return NULL;
}

/* ---- tests ---- */
static int no_args(jctx *c, jargs *a, const char *name) {
    if (a->npos || a->nkw) {
        jerr(c, "test_%s() takes 1 positional argument but %d were given", name,
             1 + a->npos + a->nkw);
        return -1;
    }
    return 0;
}

static int need_arg(jctx *c, jargs *a, const char *name) {
    if (a->npos > 1 || a->nkw) {
        jerr(c, "test '%s' takes one argument", name);
        return -1;
    }
    if (a->npos < 1) {
        jerr(c, "test '%s' needs an argument", name);
        return -1;
    }
    return 0;
}

TEST(t_defined) {
    if (no_args(c, a, "defined") < 0) return -1;
    (void)c;
    (void)a;
    return v->kind != JV_UNDEF;
}
TEST(t_undefined) {
    if (no_args(c, a, "undefined") < 0) return -1;
    (void)c;
    (void)a;
    return v->kind == JV_UNDEF;
}
TEST(t_none) {
    if (no_args(c, a, "none") < 0) return -1;
    (void)c;
    (void)a;
    return v->kind == JV_NONE;
}
TEST(t_boolean) {
    if (no_args(c, a, "boolean") < 0) return -1;
    (void)c;
    (void)a;
    return v->kind == JV_BOOL;
}
TEST(t_true) {
    if (no_args(c, a, "true") < 0) return -1;
    (void)c;
    (void)a;
    return v->kind == JV_BOOL && v->u.b;
}
TEST(t_false) {
    if (no_args(c, a, "false") < 0) return -1;
    (void)c;
    (void)a;
    return v->kind == JV_BOOL && !v->u.b;
}
TEST(t_integer) {
    if (no_args(c, a, "integer") < 0) return -1;
    (void)c;
    (void)a;
    return v->kind == JV_INT;
}
TEST(t_float) {
    if (no_args(c, a, "float") < 0) return -1;
    (void)c;
    (void)a;
    return v->kind == JV_FLOAT;
}
TEST(t_number) {
    if (no_args(c, a, "number") < 0) return -1;
    (void)c;
    (void)a;
    return v->kind == JV_INT || v->kind == JV_FLOAT || v->kind == JV_BOOL;
}
TEST(t_string) {
    if (no_args(c, a, "string") < 0) return -1;
    (void)c;
    (void)a;
    return v->kind == JV_STR;
}
TEST(t_mapping) {
    if (no_args(c, a, "mapping") < 0) return -1;
    (void)c;
    (void)a;
    return v->kind == JV_DICT;
}
TEST(t_callable) {
    if (no_args(c, a, "callable") < 0) return -1;
    (void)c;
    (void)a;
    return v->kind == JV_FUNC || v->kind == JV_UNDEF; /* Undefined has __call__ */
}
TEST(t_escaped) {
    if (no_args(c, a, "escaped") < 0) return -1;
    (void)c;
    (void)a;
    (void)v;
    return 0;
}
TEST(t_iterable) {
    if (no_args(c, a, "iterable") < 0) return -1;
    (void)c;
    (void)a;
    return v->kind == JV_STR || v->kind == JV_LIST || v->kind == JV_DICT || v->kind == JV_UNDEF;
}
TEST(t_sequence) {
    if (no_args(c, a, "sequence") < 0) return -1;
    (void)c;
    (void)a;
    return v->kind == JV_STR || v->kind == JV_DICT || jv_is_seq(v) || v->kind == JV_UNDEF;
}
TEST(t_lower) {
    if (no_args(c, a, "lower") < 0) return -1;
    (void)a;
    if (v->kind != JV_STR) return 0;
    return jv_eq(py_str_lower(c, v), v);
}
TEST(t_upper) {
    if (no_args(c, a, "upper") < 0) return -1;
    (void)a;
    if (v->kind != JV_STR) return 0;
    return jv_eq(py_str_upper(c, v), v);
}
static int int_test(jctx *c, jv *v, long long *out) {
    if (v->kind == JV_INT || v->kind == JV_BOOL) {
        *out = int_of(v);
        return 0;
    }
    if (v->kind == JV_UNDEF) {
        jerr_undef(c, v);
        return -1;
    }
    jerr(c, "unsupported operand type(s) for %%: '%s' and 'int'", jv_type_name(v));
    return -1;
}
TEST(t_odd) {
    if (no_args(c, a, "odd") < 0) return -1;
    (void)a;
    long long x;
    if (v->kind == JV_FLOAT) return fmod(v->u.f, 2) != 0;
    if (int_test(c, v, &x) < 0) return -1;
    return (x % 2) != 0;
}
TEST(t_even) {
    if (no_args(c, a, "even") < 0) return -1;
    (void)a;
    long long x;
    if (v->kind == JV_FLOAT) return fmod(v->u.f, 2) == 0;
    if (int_test(c, v, &x) < 0) return -1;
    return (x % 2) == 0;
}
TEST(t_divisibleby) {
    if (need_arg(c, a, "divisibleby") < 0) return -1;
    jv *r = py_binop(c, OP_MOD, v, a->pos[0]);
    if (c->failed) return -1;
    return !jv_truthy(r);
}
TEST(t_sameas) {
    if (need_arg(c, a, "sameas") < 0) return -1;
    jv *o = a->pos[0];
    if (v == o) return 1;
    if ((v->kind == JV_NONE || v->kind == JV_BOOL || v->kind == JV_UNDEF) && v->kind == o->kind)
        return v->kind != JV_BOOL || v->u.b == o->u.b;
    return 0;
}
TEST(t_in) {
    if (need_arg(c, a, "in") < 0) return -1;
    return py_contains(c, a->pos[0], v);
}
static int cmp_test(jctx *c, jv *v, jargs *a, int op) {
    if (need_arg(c, a, "comparison") < 0) return -1;
    return py_compare(c, op, v, a->pos[0]);
}
TEST(t_eq) {
    return cmp_test(c, v, a, OP_EQ);
}
TEST(t_ne) {
    return cmp_test(c, v, a, OP_NE);
}
TEST(t_lt) {
    return cmp_test(c, v, a, OP_LT);
}
TEST(t_le) {
    return cmp_test(c, v, a, OP_LE);
}
TEST(t_gt) {
    return cmp_test(c, v, a, OP_GT);
}
TEST(t_ge) {
    return cmp_test(c, v, a, OP_GE);
}
TEST(t_filter) {
    if (no_args(c, a, "filter") < 0) return -1;
    (void)a;
    return v->kind == JV_STR && jinja_find_filter(arena_strndup(&c->ar, v->u.str.s, v->u.str.len));
}
TEST(t_test) {
    if (no_args(c, a, "test") < 0) return -1;
    (void)a;
    return v->kind == JV_STR && jinja_find_test(arena_strndup(&c->ar, v->u.str.s, v->u.str.len));
}

typedef struct named_test {
    const char *name;
    jtest fn;
} named_test;

static const named_test tests[] = {
    {"defined", t_defined},
    {"undefined", t_undefined},
    {"none", t_none},
    {"boolean", t_boolean},
    {"true", t_true},
    {"false", t_false},
    {"integer", t_integer},
    {"float", t_float},
    {"number", t_number},
    {"string", t_string},
    {"mapping", t_mapping},
    {"callable", t_callable},
    {"escaped", t_escaped},
    {"iterable", t_iterable},
    {"sequence", t_sequence},
    {"lower", t_lower},
    {"upper", t_upper},
    {"odd", t_odd},
    {"even", t_even},
    {"divisibleby", t_divisibleby},
    {"sameas", t_sameas},
    {"in", t_in},
    {"eq", t_eq},
    {"equalto", t_eq},
    {"==", t_eq},
    {"ne", t_ne},
    {"!=", t_ne},
    {"lt", t_lt},
    {"lessthan", t_lt},
    {"<", t_lt},
    {"le", t_le},
    {"<=", t_le},
    {"gt", t_gt},
    {"greaterthan", t_gt},
    {">", t_gt},
    {"ge", t_ge},
    {">=", t_ge},
    {"filter", t_filter},
    {"test", t_test},
};

jtest jinja_find_test(const char *name) {
    for (size_t i = 0; i < ARRAY_LEN(tests); i++)
        if (!strcmp(tests[i].name, name)) return tests[i].fn;
    return NULL;
}

static int run_test(jctx *c, jv *item, const char *name, jv **extra, int nextra) {
    jtest t = jinja_find_test(name);
    jargs a = {extra, nextra, NULL, NULL, 0};
    return t(c, item, &a);
}

/* ---- globals ---- */
static jv *g_range(jctx *c, jv *self, jargs *a) {
    (void)self;
    long long v[3] = {0, 0, 1};
    if (a->npos < 1 || a->npos > 3 || a->nkw) {
        jerr(c, "range expected 1 to 3 arguments, got %d", a->npos);
        return JV_UNDEFINED;
    }
    for (int i = 0; i < a->npos; i++) {
        if (!is_int_like(a->pos[i])) {
            jerr(c, "'%s' object cannot be interpreted as an integer", jv_type_name(a->pos[i]));
            return JV_UNDEFINED;
        }
    }
    if (a->npos == 1)
        v[1] = int_of(a->pos[0]);
    else {
        v[0] = int_of(a->pos[0]);
        v[1] = int_of(a->pos[1]);
        if (a->npos == 3) v[2] = int_of(a->pos[2]);
    }
    if (!v[2]) {
        jerr(c, "range() arg 3 must not be zero");
        return JV_UNDEFINED;
    }
    double count = v[2] > 0 ? ceil(((double)v[1] - (double)v[0]) / (double)v[2])
                            : ceil(((double)v[0] - (double)v[1]) / (double)-v[2]);
    if (count > JJ_MAX_RANGE) {
        jerr(c, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).",
             JJ_MAX_RANGE);
        return JV_UNDEFINED;
    }
    jv *out = jv_list(c, SEQ_LIST, count > 0 ? (size_t)count : 0);
    for (long long x = v[0]; v[2] > 0 ? x < v[1] : x > v[1]; x += v[2])
        jv_list_push(c, out, jv_int(c, x));
    return out;
}

static jv *dict_from_args(jctx *c, jargs *a, jv_kind kind, const char *name) {
    jv *d = jv_dict(c);
    d->kind = kind;
    if (a->npos > 1) {
        jerr(c, "%s expected at most 1 argument, got %d", name, a->npos);
        return JV_UNDEFINED;
    }
    if (a->npos == 1) {
        jv *src = a->pos[0];
        if (src->kind == JV_UNDEF) return jerr_undef(c, src); /* dict(Undefined) fails */
        if (src->kind == JV_DICT || src->kind == JV_NS) {
            for (size_t i = 0; i < src->u.dict.n; i++)
                jv_dict_set(c, d, src->u.dict.k[i], src->u.dict.v[i]);
        } else {
            jv *items = jinja_iter(c, src);
            if (!items) return JV_UNDEFINED;
            for (size_t i = 0; i < items->u.list.n; i++) {
                jv *p = items->u.list.v[i];
                if (!jv_is_seq(p) || p->u.list.n != 2) {
                    jerr(c, "dictionary update sequence element #%zu has the wrong length", i);
                    return JV_UNDEFINED;
                }
                jv_dict_set(c, d, p->u.list.v[0], p->u.list.v[1]);
            }
        }
    }
    for (int i = 0; i < a->nkw; i++) jv_dict_set(c, d, jv_cstr(c, a->kwn[i]), a->kwv[i]);
    return d;
}

static jv *g_dict(jctx *c, jv *self, jargs *a) {
    (void)self;
    return dict_from_args(c, a, JV_DICT, "dict");
}

static jv *g_namespace(jctx *c, jv *self, jargs *a) {
    (void)self;
    return dict_from_args(c, a, JV_NS, "namespace");
}

static jv *g_raise_exception(jctx *c, jv *self, jargs *a) {
    (void)self;
    jv *msg = a->npos ? jv_to_str(c, a->pos[0]) : jv_strref(c, "", 0);
    jerr(c, "%.*s", (int)msg->u.str.len, msg->u.str.s);
    return JV_UNDEFINED;
}

static jv *g_strftime_now(jctx *c, jv *self, jargs *a) {
    (void)self;
    if (a->npos != 1 || a->pos[0]->kind != JV_STR) {
        jerr(c, "strftime_now() takes one format string");
        return JV_UNDEFINED;
    }
    char fmt[256], out[1024];
    snprintf(fmt, sizeof(fmt), "%.*s", (int)a->pos[0]->u.str.len, a->pos[0]->u.str.s);
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    size_t n = strftime(out, sizeof(out), fmt, &tm);
    return jv_str(c, out, n);
}

void jinja_add_globals(jctx *c, jv *vars) {
    static const struct {
        const char *name;
        jbuiltin fn;
    } g[] = {{"range", g_range},
             {"dict", g_dict},
             {"namespace", g_namespace},
             {"raise_exception", g_raise_exception},
             {"strftime_now", g_strftime_now}};
    for (size_t i = 0; i < ARRAY_LEN(g); i++)
        jv_dict_set(c, vars, jv_cstr(c, g[i].name), jv_builtin(c, g[i].name, g[i].fn, NULL));
}
