/*
 * jinja_ops.c — Python's operators and object model as Jinja2's immutable sandbox exposes
 * them: attribute and item access (x.key falls back to x['key'] and back; failures give
 * undefined), slicing, iteration, + - * / // % **, comparisons, `in`, len(), the methods of
 * str, dict and list (mutating ones are refused, as ImmutableSandboxedEnvironment does), and
 * the attributes of a for-loop's `loop`.
 */
#include "text/jinja_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool bind_args(jctx *c, const char *fname, jargs *a, const char *const *names, int n, jv **out) {
    for (int i = 0; i < n; i++) out[i] = NULL;
    if (a->npos > n) {
        jerr(c, "%s() takes at most %d argument%s (%d given)", fname, n, n == 1 ? "" : "s",
             a->npos);
        return false;
    }
    for (int i = 0; i < a->npos; i++) out[i] = a->pos[i];
    for (int k = 0; k < a->nkw; k++) {
        int i;
        for (i = 0; i < n; i++)
            if (!strcmp(names[i], a->kwn[k])) break;
        if (i == n) {
            jerr(c, "%s() got an unexpected keyword argument '%s'", fname, a->kwn[k]);
            return false;
        }
        if (out[i]) {
            jerr(c, "%s() got multiple values for argument '%s'", fname, a->kwn[k]);
            return false;
        }
        out[i] = a->kwv[k];
    }
    return true;
}

static bool is_int_like(const jv *v) {
    return v->kind == JV_INT || v->kind == JV_BOOL;
}
static long long int_of(const jv *v) {
    return v->kind == JV_INT ? v->u.i : v->u.b;
}
static bool is_num(const jv *v) {
    return is_int_like(v) || v->kind == JV_FLOAT;
}
static double float_of(const jv *v) {
    return v->kind == JV_FLOAT ? v->u.f : (double)int_of(v);
}

long long py_len(jctx *c, jv *v) {
    switch (v->kind) {
    case JV_STR:
        return (long long)u8_count(v->u.str.s, v->u.str.len);
    case JV_LIST:
        if (v->u.list.seq != SEQ_GEN) return (long long)v->u.list.n;
        break;
    case JV_DICT:
        return (long long)v->u.dict.n;
    case JV_UNDEF:
        return 0;
    default:
        break;
    }
    jerr(c, "object of type '%s' has no len()", jv_type_name(v));
    return -1;
}

jv *jinja_iter(jctx *c, jv *v) {
    switch (v->kind) {
    case JV_LIST:
        return v;
    case JV_DICT: {
        jv *l = jv_list(c, SEQ_LIST, v->u.dict.n);
        for (size_t i = 0; i < v->u.dict.n; i++) jv_list_push(c, l, v->u.dict.k[i]);
        return l;
    }
    case JV_STR:
        return py_str_chars(c, v);
    case JV_UNDEF:
        return jv_list(c, SEQ_LIST, 0);
    default:
        jerr(c, "'%s' object is not iterable", jv_type_name(v));
        return NULL;
    }
}

/* ---- item access and slicing ---- */
static jv *getitem_raw(jctx *c, jv *obj, jv *key, bool *found) {
    *found = false;
    if (obj->kind == JV_DICT) {
        if (key->kind == JV_LIST || key->kind == JV_DICT) return NULL;
        jv *v = jv_dict_get(obj, key);
        *found = v != NULL;
        return v;
    }
    if ((jv_is_seq(obj) || obj->kind == JV_STR) && is_int_like(key)) {
        long long i = int_of(key);
        if (obj->kind == JV_STR) {
            jv *ch = py_str_index(c, obj, i);
            *found = ch != NULL;
            return ch;
        }
        long long n = (long long)obj->u.list.n;
        if (i < 0) i += n;
        if (i < 0 || i >= n) return NULL;
        *found = true;
        return obj->u.list.v[i];
    }
    return NULL;
}

static jv *attr_raw(jctx *c, jv *obj, const char *name, size_t len, bool *found);

jv *jinja_getitem(jctx *c, jv *obj, jv *key) {
    if (obj->kind == JV_UNDEF) return jerr_undef(c, obj);
    bool found;
    jv *v = getitem_raw(c, obj, key, &found);
    if (found) return v;
    if (key->kind == JV_STR) {
        v = attr_raw(c, obj, key->u.str.s, key->u.str.len, &found);
        if (found) return v;
    }
    if (obj->kind == JV_DICT && key->kind == JV_STR)
        return jv_undef(c, "'dict object' has no attribute '%.*s'", (int)key->u.str.len,
                        key->u.str.s);
    return jv_undef(c, "'%s object' has no attribute or item", jv_type_name(obj));
}

static bool slice_index(jctx *c, jv *v, long long *out, bool *given) {
    *given = false;
    if (v->kind == JV_NONE) return true;
    if (!is_int_like(v)) {
        jerr(c, "slice indices must be integers or None");
        return false;
    }
    *out = int_of(v);
    *given = true;
    return true;
}

jv *jinja_slice(jctx *c, jv *obj, jv *start, jv *stop, jv *stepv) {
    if (obj->kind == JV_UNDEF) return jerr_undef(c, obj);
    bool is_str = obj->kind == JV_STR;
    if (!is_str && !jv_is_seq(obj)) {
        /* slices bypass Jinja's getitem, so Python's error stands */
        if (obj->kind == JV_DICT)
            jerr(c, "unhashable type: 'slice'");
        else
            jerr(c, "'%s' object is not subscriptable", jv_type_name(obj));
        return JV_UNDEFINED;
    }
    long long a = 0, b = 0, st = 1;
    bool ha, hb, hs;
    if (!slice_index(c, start, &a, &ha) || !slice_index(c, stop, &b, &hb) ||
        !slice_index(c, stepv, &st, &hs))
        return JV_UNDEFINED;
    if (!hs) st = 1;
    if (st == 0) {
        jerr(c, "slice step cannot be zero");
        return JV_UNDEFINED;
    }
    jv *items = is_str ? py_str_chars(c, obj) : obj;
    long long n = (long long)items->u.list.n;
    long long lower = st > 0 ? 0 : -1, upper = st > 0 ? n : n - 1;
    if (!ha)
        a = st < 0 ? upper : lower;
    else {
        if (a < 0) a += n;
        if (a < lower) a = lower;
        if (a > upper) a = upper;
    }
    if (!hb)
        b = st < 0 ? lower : upper;
    else {
        if (b < 0) b += n;
        if (b < lower) b = lower;
        if (b > upper) b = upper;
    }
    if (is_str) {
        outbuf o = {0};
        for (long long i = a; st > 0 ? i < b : i > b; i += st) {
            jv *ch = items->u.list.v[i];
            ob_put(c, &o, ch->u.str.s, ch->u.str.len);
        }
        jv *r = jv_str(c, o.s ? o.s : "", o.len);
        ob_free(&o);
        return r;
    }
    jv *r = jv_list(c, obj->u.list.seq, 0);
    for (long long i = a; st > 0 ? i < b : i > b; i += st) jv_list_push(c, r, items->u.list.v[i]);
    return r;
}

/* ---- methods ---- */
static jv *str_arg(jctx *c, jv *v, const char *what) {
    if (v && v->kind != JV_STR) {
        jerr(c, "%s must be str, not %s", what, jv_type_name(v));
        return NULL;
    }
    return v;
}

static long long int_arg(jctx *c, jv *v, long long dflt) {
    if (!v || v->kind == JV_NONE) return dflt;
    if (!is_int_like(v)) {
        jerr(c, "'%s' object cannot be interpreted as an integer", jv_type_name(v));
        return dflt;
    }
    return int_of(v);
}

#define METHOD(fname) static jv *fname(jctx *c, jv *self, jargs *a)

static jv *strip_common(jctx *c, jv *self, jargs *a, bool l, bool r, const char *name) {
    static const char *const names[] = {"chars"};
    jv *args[1];
    if (!bind_args(c, name, a, names, 1, args)) return JV_UNDEFINED;
    if (args[0] && args[0]->kind == JV_NONE) args[0] = NULL;
    if (!str_arg(c, args[0], "chars")) {
        if (c->failed) return JV_UNDEFINED;
    }
    return py_str_strip(c, self, args[0], l, r);
}
METHOD(m_strip) {
    return strip_common(c, self, a, true, true, "strip");
}
METHOD(m_lstrip) {
    return strip_common(c, self, a, true, false, "lstrip");
}
METHOD(m_rstrip) {
    return strip_common(c, self, a, false, true, "rstrip");
}

static jv *split_common(jctx *c, jv *self, jargs *a, bool right) {
    static const char *const names[] = {"sep", "maxsplit"};
    jv *args[2];
    if (!bind_args(c, right ? "rsplit" : "split", a, names, 2, args)) return JV_UNDEFINED;
    jv *sep = args[0] && args[0]->kind != JV_NONE ? args[0] : NULL;
    if (sep && !str_arg(c, sep, "sep")) return JV_UNDEFINED;
    long long maxsplit = int_arg(c, args[1], -1);
    if (c->failed) return JV_UNDEFINED;
    return py_str_split(c, self, sep, maxsplit, right);
}
METHOD(m_split) {
    return split_common(c, self, a, false);
}
METHOD(m_rsplit) {
    return split_common(c, self, a, true);
}

METHOD(m_splitlines) {
    static const char *const names[] = {"keepends"};
    jv *args[1];
    if (!bind_args(c, "splitlines", a, names, 1, args)) return JV_UNDEFINED;
    bool keep = args[0] && jv_truthy(args[0]);
    jv *out = jv_list(c, SEQ_LIST, 0);
    const char *s = self->u.str.s;
    size_t n = self->u.str.len, start = 0;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        size_t k = u8_decode(s, n, i, &cp);
        bool brk = cp == '\n' || cp == '\r' || cp == 0x0b || cp == 0x0c ||
                   (cp >= 0x1c && cp <= 0x1e) || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
        if (!brk) {
            i += k;
            continue;
        }
        size_t end = i + k;
        if (cp == '\r' && end < n && s[end] == '\n') end++;
        jv_list_push(c, out, jv_strref(c, s + start, (keep ? end : i) - start));
        start = i = end;
    }
    if (start < n) jv_list_push(c, out, jv_strref(c, s + start, n - start));
    return out;
}

static jv *affix_common(jctx *c, jv *self, jargs *a, bool end) {
    static const char *const names[] = {"prefix", "start", "end"};
    jv *args[3];
    if (!bind_args(c, end ? "endswith" : "startswith", a, names, 3, args)) return JV_UNDEFINED;
    if (!args[0]) {
        jerr(c, "%s() takes at least 1 argument (0 given)", end ? "endswith" : "startswith");
        return JV_UNDEFINED;
    }
    jv *subject = self;
    if (args[1] || args[2])
        subject = jinja_slice(c, self, args[1] ? args[1] : JV_NONEV, args[2] ? args[2] : JV_NONEV,
                              JV_NONEV);
    jv *cands = args[0];
    size_t ncand = 1;
    jv **list = &cands;
    if (cands->kind == JV_LIST && cands->u.list.seq == SEQ_TUPLE) {
        ncand = cands->u.list.n;
        list = cands->u.list.v;
    }
    for (size_t i = 0; i < ncand; i++) {
        jv *p = list[i];
        if (p->kind != JV_STR) {
            jerr(c, "%s first arg must be str or a tuple of str, not %s",
                 end ? "endswith" : "startswith", jv_type_name(p));
            return JV_UNDEFINED;
        }
        size_t pl = p->u.str.len, sl = subject->u.str.len;
        if (pl <= sl && !memcmp(subject->u.str.s + (end ? sl - pl : 0), p->u.str.s, pl))
            return JV_BOOLV(true);
    }
    return JV_BOOLV(false);
}
METHOD(m_startswith) {
    return affix_common(c, self, a, false);
}
METHOD(m_endswith) {
    return affix_common(c, self, a, true);
}

METHOD(m_replace) {
    static const char *const names[] = {"old", "new", "count"};
    jv *args[3];
    if (!bind_args(c, "replace", a, names, 3, args)) return JV_UNDEFINED;
    if (!args[0] || !args[1]) {
        jerr(c, "replace() takes at least 2 arguments");
        return JV_UNDEFINED;
    }
    if (!str_arg(c, args[0], "replace() argument 1") ||
        !str_arg(c, args[1], "replace() argument 2"))
        return JV_UNDEFINED;
    long long count = int_arg(c, args[2], -1);
    return c->failed ? JV_UNDEFINED : py_str_replace(c, self, args[0], args[1], count);
}

METHOD(m_upper) {
    (void)a;
    return py_str_upper(c, self);
}
METHOD(m_lower) {
    (void)a;
    return py_str_lower(c, self);
}
METHOD(m_title) {
    (void)a;
    return py_str_title(c, self);
}
METHOD(m_capitalize) {
    (void)a;
    return py_str_capitalize(c, self);
}

static jv *find_common(jctx *c, jv *self, jargs *a, bool right, bool raise, const char *name) {
    static const char *const names[] = {"sub", "start", "end"};
    jv *args[3];
    if (!bind_args(c, name, a, names, 3, args)) return JV_UNDEFINED;
    if (!args[0] || !str_arg(c, args[0], "argument")) {
        if (!c->failed) jerr(c, "%s() takes at least 1 argument", name);
        return JV_UNDEFINED;
    }
    long long off = 0;
    jv *subject = self;
    if (args[1] || args[2]) {
        long long n = (long long)u8_count(self->u.str.s, self->u.str.len);
        off = int_arg(c, args[1], 0);
        if (off < 0) off += n;
        if (off < 0) off = 0;
        subject = jinja_slice(c, self, jv_int(c, off), args[2] ? args[2] : JV_NONEV, JV_NONEV);
    }
    long long r = py_str_find(subject, args[0], right);
    if (r < 0 && raise) {
        jerr(c, "substring not found");
        return JV_UNDEFINED;
    }
    return jv_int(c, r < 0 ? -1 : r + off);
}
METHOD(m_find) {
    return find_common(c, self, a, false, false, "find");
}
METHOD(m_rfind) {
    return find_common(c, self, a, true, false, "rfind");
}
METHOD(m_index) {
    return find_common(c, self, a, false, true, "index");
}
METHOD(m_rindex) {
    return find_common(c, self, a, true, true, "rindex");
}

METHOD(m_count) {
    if (self->kind == JV_LIST) {
        if (a->npos != 1) {
            jerr(c, "count() takes exactly one argument");
            return JV_UNDEFINED;
        }
        long long n = 0;
        for (size_t i = 0; i < self->u.list.n; i++) n += jv_eq(self->u.list.v[i], a->pos[0]);
        return jv_int(c, n);
    }
    if (a->npos < 1 || !str_arg(c, a->pos[0], "argument")) {
        if (!c->failed) jerr(c, "count() takes at least 1 argument");
        return JV_UNDEFINED;
    }
    const jv *sub = a->pos[0];
    if (!sub->u.str.len) return jv_int(c, (long long)u8_count(self->u.str.s, self->u.str.len) + 1);
    long long n = 0;
    const char *p = self->u.str.s, *end = p + self->u.str.len;
    while (p < end) {
        const char *hit = memmem(p, (size_t)(end - p), sub->u.str.s, sub->u.str.len);
        if (!hit) break;
        n++;
        p = hit + sub->u.str.len;
    }
    return jv_int(c, n);
}

METHOD(m_join) {
    if (a->npos != 1 || a->nkw) {
        jerr(c, "join() takes exactly one argument");
        return JV_UNDEFINED;
    }
    jv *items = jinja_iter(c, a->pos[0]);
    if (!items) return JV_UNDEFINED;
    outbuf b = {0};
    for (size_t i = 0; i < items->u.list.n && !c->failed; i++) {
        jv *it = items->u.list.v[i];
        if (it->kind != JV_STR) {
            jerr(c, "sequence item %zu: expected str instance, %s found", i, jv_type_name(it));
            break;
        }
        if (i) ob_put(c, &b, self->u.str.s, self->u.str.len);
        ob_put(c, &b, it->u.str.s, it->u.str.len);
    }
    jv *r = jv_str(c, b.s ? b.s : "", b.len);
    ob_free(&b);
    return r;
}

METHOD(m_format) {
    return py_str_format(c, self, a);
}

static jv *str_pred(jctx *c, jv *self, jargs *a, int kind) {
    (void)a;
    (void)c;
    size_t n = self->u.str.len;
    if (!n) return JV_BOOLV(false);
    bool any_cased = false;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        i += u8_decode(self->u.str.s, n, i, &cp);
        bool ok;
        switch (kind) {
        case 0:
            ok = cp >= '0' && cp <= '9';
            break; /* isdigit */
        case 1:
            ok = (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
            break; /* isalpha */
        case 2:
            ok = (cp >= '0' && cp <= '9') || ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z');
            break;
        case 3:
            ok = py_isspace(cp);
            break;
        case 4: /* isupper */
        case 5: /* islower */
            if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) {
                any_cased = true;
                ok = kind == 4 ? (cp >= 'A' && cp <= 'Z') : (cp >= 'a' && cp <= 'z');
            } else
                ok = true;
            break;
        default:
            ok = false;
        }
        if (cp >= 0x80 && kind <= 2) ok = false;
        if (!ok) return JV_BOOLV(false);
    }
    return JV_BOOLV(kind >= 4 ? any_cased : true);
}
METHOD(m_isdigit) {
    return str_pred(c, self, a, 0);
}
METHOD(m_isalpha) {
    return str_pred(c, self, a, 1);
}
METHOD(m_isalnum) {
    return str_pred(c, self, a, 2);
}
METHOD(m_isspace) {
    return str_pred(c, self, a, 3);
}
METHOD(m_isupper) {
    return str_pred(c, self, a, 4);
}
METHOD(m_islower) {
    return str_pred(c, self, a, 5);
}

static jv *affix_remove(jctx *c, jv *self, jargs *a, bool suffix) {
    if (a->npos != 1 || !str_arg(c, a->pos[0], "argument")) {
        if (!c->failed) jerr(c, "takes exactly one argument");
        return JV_UNDEFINED;
    }
    jv *p = a->pos[0];
    size_t pl = p->u.str.len, sl = self->u.str.len;
    if (pl <= sl && !memcmp(self->u.str.s + (suffix ? sl - pl : 0), p->u.str.s, pl))
        return jv_strref(c, self->u.str.s + (suffix ? 0 : pl), sl - pl);
    return self;
}
METHOD(m_removeprefix) {
    return affix_remove(c, self, a, false);
}
METHOD(m_removesuffix) {
    return affix_remove(c, self, a, true);
}

static jv *partition_common(jctx *c, jv *self, jargs *a, bool right) {
    if (a->npos != 1 || !str_arg(c, a->pos[0], "argument")) {
        if (!c->failed) jerr(c, "partition() takes exactly one argument");
        return JV_UNDEFINED;
    }
    jv *sep = a->pos[0];
    jv *parts = py_str_split(c, self, sep, 1, right);
    if (c->failed) return JV_UNDEFINED;
    jv *t = jv_list(c, SEQ_TUPLE, 3);
    jv *empty = jv_strref(c, "", 0);
    if (parts->u.list.n == 2) {
        jv_list_push(c, t, parts->u.list.v[0]);
        jv_list_push(c, t, sep);
        jv_list_push(c, t, parts->u.list.v[1]);
    } else if (right) {
        jv_list_push(c, t, empty);
        jv_list_push(c, t, empty);
        jv_list_push(c, t, self);
    } else {
        jv_list_push(c, t, self);
        jv_list_push(c, t, empty);
        jv_list_push(c, t, empty);
    }
    return t;
}
METHOD(m_partition) {
    return partition_common(c, self, a, false);
}
METHOD(m_rpartition) {
    return partition_common(c, self, a, true);
}

static jv *pad_common(jctx *c, jv *self, jargs *a, int mode) {
    long long width = a->npos >= 1 ? int_arg(c, a->pos[0], 0) : 0;
    jv *fillv = a->npos >= 2 ? a->pos[1] : NULL;
    if (c->failed) return JV_UNDEFINED;
    if (width > JJ_MAX_OUTPUT) width = JJ_MAX_OUTPUT;
    const char *fill = " ";
    size_t fl = 1;
    if (fillv && fillv->kind == JV_STR && u8_count(fillv->u.str.s, fillv->u.str.len) == 1) {
        fill = fillv->u.str.s;
        fl = fillv->u.str.len;
    }
    long long len = (long long)u8_count(self->u.str.s, self->u.str.len);
    if (width <= len) return self;
    long long padn = width - len;
    long long left = mode == 0 ? 0 : mode == 1 ? padn : padn / 2 + (padn & width & 1);
    if (mode == 3) { /* zfill */
        outbuf b = {0};
        size_t off = 0;
        if (self->u.str.len && (self->u.str.s[0] == '-' || self->u.str.s[0] == '+')) {
            ob_putc(c, &b, self->u.str.s[0]);
            off = 1;
        }
        for (long long i = 0; i < padn; i++) ob_putc(c, &b, '0');
        ob_put(c, &b, self->u.str.s + off, self->u.str.len - off);
        jv *r = jv_str(c, b.s, b.len);
        ob_free(&b);
        return r;
    }
    outbuf b = {0};
    for (long long i = 0; i < left && !c->failed; i++) ob_put(c, &b, fill, fl);
    ob_put(c, &b, self->u.str.s, self->u.str.len);
    for (long long i = left; i < padn && !c->failed; i++) ob_put(c, &b, fill, fl);
    jv *r = jv_str(c, b.s ? b.s : "", b.len);
    ob_free(&b);
    return r;
}
METHOD(m_ljust) {
    return pad_common(c, self, a, 0);
}
METHOD(m_rjust) {
    return pad_common(c, self, a, 1);
}
METHOD(m_center) {
    return pad_common(c, self, a, 2);
}
METHOD(m_zfill) {
    return pad_common(c, self, a, 3);
}

METHOD(m_dict_get) {
    if (a->npos < 1 || a->npos > 2 || a->nkw) {
        jerr(c, "get expected 1 or 2 arguments");
        return JV_UNDEFINED;
    }
    jv *v = jv_dict_get(self, a->pos[0]);
    return v ? v : a->npos == 2 ? a->pos[1] : JV_NONEV;
}

static jv *dict_view(jctx *c, jv *self, jv_seq seq) {
    jv *l = jv_list(c, seq, self->u.dict.n);
    for (size_t i = 0; i < self->u.dict.n; i++) {
        if (seq == SEQ_ITEMS) {
            jv *t = jv_list(c, SEQ_TUPLE, 2);
            jv_list_push(c, t, self->u.dict.k[i]);
            jv_list_push(c, t, self->u.dict.v[i]);
            jv_list_push(c, l, t);
        } else
            jv_list_push(c, l, seq == SEQ_KEYS ? self->u.dict.k[i] : self->u.dict.v[i]);
    }
    return l;
}
METHOD(m_items) {
    (void)a;
    return dict_view(c, self, SEQ_ITEMS);
}
METHOD(m_keys) {
    (void)a;
    return dict_view(c, self, SEQ_KEYS);
}
METHOD(m_values) {
    (void)a;
    return dict_view(c, self, SEQ_VALUES);
}
METHOD(m_copy) {
    (void)a;
    if (self->kind == JV_DICT) {
        jv *d = jv_dict(c);
        for (size_t i = 0; i < self->u.dict.n; i++)
            jv_dict_set(c, d, self->u.dict.k[i], self->u.dict.v[i]);
        return d;
    }
    jv *l = jv_list(c, SEQ_LIST, self->u.list.n);
    for (size_t i = 0; i < self->u.list.n; i++) jv_list_push(c, l, self->u.list.v[i]);
    return l;
}
METHOD(m_list_index) {
    if (a->npos < 1) {
        jerr(c, "index expected at least 1 argument");
        return JV_UNDEFINED;
    }
    for (size_t i = 0; i < self->u.list.n; i++)
        if (jv_eq(self->u.list.v[i], a->pos[0])) return jv_int(c, (long long)i);
    jerr(c, "value is not in list");
    return JV_UNDEFINED;
}

static jv *loop_cycle(jctx *c, jv *self, jargs *a) {
    if (!a->npos) {
        jerr(c, "no items for cycling given");
        return JV_UNDEFINED;
    }
    return a->pos[self->u.loop->i % a->npos];
}

static jv *loop_changed(jctx *c, jv *self, jargs *a) {
    jv *now = jv_list(c, SEQ_TUPLE, (size_t)a->npos);
    for (int i = 0; i < a->npos; i++) jv_list_push(c, now, a->pos[i]);
    jloop *lp = self->u.loop;
    if (lp->last_changed && jv_eq(lp->last_changed, now)) return JV_BOOLV(false);
    lp->last_changed = now;
    return JV_BOOLV(true);
}

typedef struct method {
    const char *name;
    jbuiltin fn;
} method;

static const method str_methods[] = {
    {"strip", m_strip},
    {"lstrip", m_lstrip},
    {"rstrip", m_rstrip},
    {"split", m_split},
    {"rsplit", m_rsplit},
    {"splitlines", m_splitlines},
    {"startswith", m_startswith},
    {"endswith", m_endswith},
    {"replace", m_replace},
    {"upper", m_upper},
    {"lower", m_lower},
    {"title", m_title},
    {"capitalize", m_capitalize},
    {"casefold", m_lower},
    {"find", m_find},
    {"rfind", m_rfind},
    {"index", m_index},
    {"rindex", m_rindex},
    {"count", m_count},
    {"join", m_join},
    {"format", m_format},
    {"isdigit", m_isdigit},
    {"isnumeric", m_isdigit},
    {"isdecimal", m_isdigit},
    {"isalpha", m_isalpha},
    {"isalnum", m_isalnum},
    {"isspace", m_isspace},
    {"isupper", m_isupper},
    {"islower", m_islower},
    {"removeprefix", m_removeprefix},
    {"removesuffix", m_removesuffix},
    {"partition", m_partition},
    {"rpartition", m_rpartition},
    {"ljust", m_ljust},
    {"rjust", m_rjust},
    {"center", m_center},
    {"zfill", m_zfill},
};
static const method dict_methods[] = {
    {"get", m_dict_get},  {"items", m_items}, {"keys", m_keys},
    {"values", m_values}, {"copy", m_copy},
};
static const method list_methods[] = {
    {"count", m_count}, {"index", m_list_index}, {"copy", m_copy}};
static const char *const dict_mutators[] = {"clear",      "pop",    "popitem",
                                            "setdefault", "update", "fromkeys"};
static const char *const list_mutators[] = {"append", "clear",  "extend",  "insert",
                                            "pop",    "remove", "reverse", "sort"};

static jv *find_method(jctx *c, const method *m, size_t n, jv *self, const char *name, size_t len) {
    for (size_t i = 0; i < n; i++)
        if (strlen(m[i].name) == len && !memcmp(m[i].name, name, len))
            return jv_builtin(c, m[i].name, m[i].fn, self);
    return NULL;
}

static bool in_names(const char *const *names, size_t n, const char *name, size_t len) {
    for (size_t i = 0; i < n; i++)
        if (strlen(names[i]) == len && !memcmp(names[i], name, len)) return true;
    return false;
}

/* getattr(obj, name) as Python would answer it; *found false means AttributeError */
static jv *attr_raw(jctx *c, jv *obj, const char *name, size_t len, bool *found) {
    *found = true;
    if (len && name[0] == '_') {
        *found = false;
        return NULL;
    }
    jv *m = NULL;
    switch (obj->kind) {
    case JV_STR:
        m = find_method(c, str_methods, ARRAY_LEN(str_methods), obj, name, len);
        break;
    case JV_DICT:
        m = find_method(c, dict_methods, ARRAY_LEN(dict_methods), obj, name, len);
        if (!m && in_names(dict_mutators, ARRAY_LEN(dict_mutators), name, len))
            m = jv_undef(c, "access to attribute '%.*s' of 'dict' object is unsafe", (int)len,
                         name);
        break;
    case JV_LIST:
        if (obj->u.list.seq == SEQ_LIST || obj->u.list.seq == SEQ_TUPLE)
            m = find_method(c, list_methods,
                            ARRAY_LEN(list_methods) - (obj->u.list.seq == SEQ_TUPLE), obj, name,
                            len);
        if (!m && obj->u.list.seq == SEQ_LIST &&
            in_names(list_mutators, ARRAY_LEN(list_mutators), name, len))
            m = jv_undef(c, "access to attribute '%.*s' of 'list' object is unsafe", (int)len,
                         name);
        break;
    case JV_NS:
        m = jv_dict_getn(obj, name, len);
        break;
    case JV_INT:
    case JV_BOOL:
    case JV_FLOAT: {
        /* the numeric attributes of Python's int and float */
        bool is_f = obj->kind == JV_FLOAT;
        if (len == 4 && !memcmp(name, "real", 4)) return is_f ? obj : jv_int(c, int_of(obj));
        if (len == 4 && !memcmp(name, "imag", 4)) return is_f ? jv_float(c, 0.0) : jv_int(c, 0);
        if (!is_f && len == 9 && !memcmp(name, "numerator", 9)) return jv_int(c, int_of(obj));
        if (!is_f && len == 11 && !memcmp(name, "denominator", 11)) return jv_int(c, 1);
        break;
    }
    case JV_LOOP: {
        jloop *lp = obj->u.loop;
#define IS(s) (len == strlen(s) && !memcmp(name, s, len))
        if (IS("index")) return jv_int(c, lp->i + 1);
        if (IS("index0")) return jv_int(c, lp->i);
        if (IS("revindex")) return jv_int(c, lp->n - lp->i);
        if (IS("revindex0")) return jv_int(c, lp->n - lp->i - 1);
        if (IS("first")) return JV_BOOLV(lp->i == 0);
        if (IS("last")) return JV_BOOLV(lp->i == lp->n - 1);
        if (IS("length")) return jv_int(c, lp->n);
        if (IS("depth")) return jv_int(c, 1);
        if (IS("depth0")) return jv_int(c, 0);
        if (IS("previtem"))
            return lp->i > 0 ? lp->items[lp->i - 1] : jv_undef(c, "there is no previous item");
        if (IS("nextitem"))
            return lp->i + 1 < lp->n ? lp->items[lp->i + 1] : jv_undef(c, "there is no next item");
        if (IS("cycle")) return jv_builtin(c, "cycle", loop_cycle, obj);
        if (IS("changed")) return jv_builtin(c, "changed", loop_changed, obj);
#undef IS
        break;
    }
    default:
        break;
    }
    if (!m) *found = false;
    return m;
}

jv *jinja_getattr(jctx *c, jv *obj, const char *name, size_t len) {
    if (obj->kind == JV_UNDEF) return jerr_undef(c, obj);
    bool found;
    jv *v = attr_raw(c, obj, name, len, &found);
    if (found) return v;
    if (len && name[0] == '_' && obj->kind != JV_DICT)
        return jv_undef(c, "access to attribute '%.*s' is unsafe", (int)len, name);
    if (obj->kind == JV_DICT) {
        v = jv_dict_getn(obj, name, len);
        if (v) return v;
    } else {
        v = getitem_raw(c, obj, jv_strref(c, name, len), &found);
        if (found) return v;
    }
    return jv_undef(c, "'%s object' has no attribute '%.*s'",
                    obj->kind == JV_DICT ? "dict" : jv_type_name(obj), (int)len, name);
}

/* ---- operators ---- */
static jv *overflow(jctx *c) {
    jerr(c, "integer overflow");
    return JV_UNDEFINED;
}

static jv *repeat(jctx *c, jv *seq, long long n) {
    if (n < 0) n = 0;
    if (seq->kind == JV_STR) {
        if (seq->u.str.len && (unsigned long long)n > JJ_MAX_OUTPUT / seq->u.str.len) {
            jerr(c, "string repetition is larger than the limit (%u bytes)", JJ_MAX_OUTPUT);
            return JV_UNDEFINED;
        }
        outbuf b = {0};
        for (long long i = 0; i < n && !c->failed; i++) ob_put(c, &b, seq->u.str.s, seq->u.str.len);
        jv *r = jv_str(c, b.s ? b.s : "", b.len);
        ob_free(&b);
        return r;
    }
    if (seq->u.list.n && (unsigned long long)n > JJ_MAX_RANGE * 10ull / seq->u.list.n) {
        jerr(c, "list repetition is too large");
        return JV_UNDEFINED;
    }
    jv *l = jv_list(c, seq->u.list.seq, 0);
    for (long long i = 0; i < n; i++)
        for (size_t k = 0; k < seq->u.list.n; k++) jv_list_push(c, l, seq->u.list.v[k]);
    return l;
}

static const char *op_name(int op) {
    switch (op) {
    case OP_ADD:
        return "+";
    case OP_SUB:
        return "-";
    case OP_MUL:
        return "*";
    case OP_DIV:
        return "/";
    case OP_FDIV:
        return "//";
    case OP_MOD:
        return "%";
    case OP_POW:
        return "** or pow()";
    case OP_LT:
        return "<";
    case OP_LE:
        return "<=";
    case OP_GT:
        return ">";
    case OP_GE:
        return ">=";
    default:
        return "?";
    }
}

jv *py_binop(jctx *c, int op, jv *a, jv *b) {
    /* str % Undefined: Python takes Undefined (it has __getitem__) for a mapping */
    if (op == OP_MOD && a->kind == JV_STR && b->kind == JV_UNDEF) return py_percent_format(c, a, b);
    if (a->kind == JV_UNDEF) return jerr_undef(c, a);
    if (b->kind == JV_UNDEF) return jerr_undef(c, b);
    if (is_num(a) && is_num(b)) {
        if (is_int_like(a) && is_int_like(b) && op != OP_DIV) {
            long long x = int_of(a), y = int_of(b), r;
            switch (op) {
            case OP_ADD:
                if (__builtin_add_overflow(x, y, &r)) return overflow(c);
                return jv_int(c, r);
            case OP_SUB:
                if (__builtin_sub_overflow(x, y, &r)) return overflow(c);
                return jv_int(c, r);
            case OP_MUL:
                if (__builtin_mul_overflow(x, y, &r)) return overflow(c);
                return jv_int(c, r);
            case OP_FDIV:
            case OP_MOD: {
                if (!y) {
                    jerr(c, "integer division or modulo by zero");
                    return JV_UNDEFINED;
                }
                if (x == INT64_MIN && y == -1) return overflow(c);
                long long q = x / y, m = x % y;
                if (m && ((m < 0) != (y < 0))) {
                    q--;
                    m += y;
                }
                return jv_int(c, op == OP_FDIV ? q : m);
            }
            case OP_POW: {
                if (y < 0) return jv_float(c, pow((double)x, (double)y));
                long long base = x, e = y;
                r = 1;
                while (e > 0) {
                    if ((e & 1) && __builtin_mul_overflow(r, base, &r)) return overflow(c);
                    e >>= 1;
                    if (e && __builtin_mul_overflow(base, base, &base)) return overflow(c);
                }
                return jv_int(c, r);
            }
            default:
                break;
            }
        }
        double x = float_of(a), y = float_of(b);
        switch (op) {
        case OP_ADD:
            return jv_float(c, x + y);
        case OP_SUB:
            return jv_float(c, x - y);
        case OP_MUL:
            return jv_float(c, x * y);
        case OP_DIV:
            if (y == 0) {
                jerr(c, "division by zero");
                return JV_UNDEFINED;
            }
            return jv_float(c, x / y);
        case OP_FDIV:
        case OP_MOD: {
            if (y == 0) {
                jerr(c, "float division by zero");
                return JV_UNDEFINED;
            }
            /* Python's float divmod */
            double m = fmod(x, y), div = (x - m) / y;
            if (m != 0) {
                if ((y < 0) != (m < 0)) {
                    m += y;
                    div -= 1.0;
                }
            } else
                m = copysign(0.0, y);
            if (op == OP_MOD) return jv_float(c, m);
            double fl;
            if (div != 0) {
                fl = floor(div);
                if (div - fl > 0.5) fl += 1.0;
            } else
                fl = copysign(0.0, x / y);
            return jv_float(c, fl);
        }
        case OP_POW:
            if (x == 0 && y < 0) {
                jerr(c, "0.0 cannot be raised to a negative power");
                return JV_UNDEFINED;
            }
            if (x < 0 && y != floor(y)) {
                jerr(c,
                     "a negative number to a fractional power is complex, which is not supported");
                return JV_UNDEFINED;
            }
            return jv_float(c, pow(x, y));
        default:
            break;
        }
    }
    if (op == OP_ADD) {
        if (a->kind == JV_STR && b->kind == JV_STR) {
            bool safe = a->u.str.safe || b->u.str.safe;
            if (safe) {
                /* Markup + str escapes the plain side, as markupsafe does */
                if (!a->u.str.safe) a = html_escape(c, a);
                if (!b->u.str.safe) b = html_escape(c, b);
            }
            size_t n = a->u.str.len + b->u.str.len;
            if (n > JJ_MAX_OUTPUT) {
                jerr(c, "string is larger than the limit (%u bytes)", JJ_MAX_OUTPUT);
                return JV_UNDEFINED;
            }
            char *s = arena_alloc(&c->ar, n + 1);
            memcpy(s, a->u.str.s, a->u.str.len);
            memcpy(s + a->u.str.len, b->u.str.s, b->u.str.len);
            jv *r = jv_strref(c, s, n);
            r->u.str.safe = safe;
            return r;
        }
        if (jv_is_seq(a) && jv_is_seq(b) && a->u.list.seq == b->u.list.seq) {
            jv *l = jv_list(c, a->u.list.seq, a->u.list.n + b->u.list.n);
            for (size_t i = 0; i < a->u.list.n; i++) jv_list_push(c, l, a->u.list.v[i]);
            for (size_t i = 0; i < b->u.list.n; i++) jv_list_push(c, l, b->u.list.v[i]);
            return l;
        }
        if (a->kind == JV_STR || b->kind == JV_STR) {
            jerr(c, "can only concatenate str (not \"%s\") to str",
                 jv_type_name(a->kind == JV_STR ? b : a));
            return JV_UNDEFINED;
        }
    }
    if (op == OP_MUL) {
        if ((a->kind == JV_STR || jv_is_seq(a)) && is_int_like(b)) return repeat(c, a, int_of(b));
        if ((b->kind == JV_STR || jv_is_seq(b)) && is_int_like(a)) return repeat(c, b, int_of(a));
    }
    if (op == OP_MOD && a->kind == JV_STR) return py_percent_format(c, a, b);
    jerr(c, "unsupported operand type(s) for %s: '%s' and '%s'", op_name(op), jv_type_name(a),
         jv_type_name(b));
    return JV_UNDEFINED;
}

int py_contains(jctx *c, jv *container, jv *item) {
    switch (container->kind) {
    case JV_STR:
        if (item->kind != JV_STR) {
            jerr(c, "'in <string>' requires string as left operand, not %s", jv_type_name(item));
            return -1;
        }
        return memmem(container->u.str.s, container->u.str.len, item->u.str.s, item->u.str.len) !=
                   NULL ||
               item->u.str.len == 0;
    case JV_LIST:
        for (size_t i = 0; i < container->u.list.n; i++)
            if (jv_eq(container->u.list.v[i], item)) return 1;
        return 0;
    case JV_DICT:
        if (item->kind == JV_LIST || item->kind == JV_DICT) {
            jerr(c, "unhashable type: '%s'", jv_type_name(item));
            return -1;
        }
        return jv_dict_get(container, item) != NULL;
    case JV_UNDEF:
        return 0;
    default:
        jerr(c, "argument of type '%s' is not iterable", jv_type_name(container));
        return -1;
    }
}

static int cmp3(jctx *c, jv *a, jv *b, int op) {
    if (is_num(a) && is_num(b)) {
        if (is_int_like(a) && is_int_like(b)) {
            long long x = int_of(a), y = int_of(b);
            return x < y ? -1 : x > y;
        }
        double x = float_of(a), y = float_of(b);
        if (x != x || y != y) return 2; /* NaN: every ordering is false */
        return x < y ? -1 : x > y;
    }
    if (a->kind == JV_STR && b->kind == JV_STR) {
        size_t n = a->u.str.len < b->u.str.len ? a->u.str.len : b->u.str.len;
        int r = memcmp(a->u.str.s, b->u.str.s, n);
        if (r) return r < 0 ? -1 : 1;
        return a->u.str.len < b->u.str.len ? -1 : a->u.str.len > b->u.str.len;
    }
    if (jv_is_seq(a) && jv_is_seq(b) && a->u.list.seq == b->u.list.seq) {
        for (size_t i = 0; i < a->u.list.n && i < b->u.list.n; i++) {
            if (jv_eq(a->u.list.v[i], b->u.list.v[i])) continue;
            return cmp3(c, a->u.list.v[i], b->u.list.v[i], op);
        }
        return a->u.list.n < b->u.list.n ? -1 : a->u.list.n > b->u.list.n;
    }
    if (a->kind == JV_UNDEF)
        jerr_undef(c, a);
    else if (b->kind == JV_UNDEF)
        jerr_undef(c, b);
    else
        jerr(c, "'%s' not supported between instances of '%s' and '%s'", op_name(op),
             jv_type_name(a), jv_type_name(b));
    return 3;
}

int py_compare(jctx *c, int op, jv *a, jv *b) {
    switch (op) {
    case OP_EQ:
        return jv_eq(a, b);
    case OP_NE:
        return !jv_eq(a, b);
    case OP_IN:
        return py_contains(c, b, a);
    case OP_NOTIN: {
        int r = py_contains(c, b, a);
        return r < 0 ? -1 : !r;
    }
    default:
        break;
    }
    int r = cmp3(c, a, b, op);
    if (r == 3) return -1;
    if (r == 2) return 0;
    switch (op) {
    case OP_LT:
        return r < 0;
    case OP_LE:
        return r <= 0;
    case OP_GT:
        return r > 0;
    case OP_GE:
        return r >= 0;
    default:
        return -1;
    }
}
