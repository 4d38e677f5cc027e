/*
 * jinja_eval.c — walks the AST and renders it. Scoping follows Jinja2: each for-loop
 * iteration, macro call and {% with %} gets its own scope, so {% set %} inside a loop does
 * not leak out (that is what namespace() is for). Errors unwind by checking c->failed; every
 * allocation lives in the render's arena; loops, macro calls, recursion depth, memory and
 * output size are all bounded so a hostile template ends with an error, never a hang.
 */
#include "text/jinja_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ST_OK = 0, ST_BREAK = 1, ST_CONTINUE = 2, ST_ERR = -1 };

static jv *eval(jctx *c, scope *sc, const node *nd);
static int exec_body(jctx *c, scope *sc, const nodelist *body);

static scope *new_scope(jctx *c, scope *parent) {
    scope *s = arena_alloc(&c->ar, sizeof(scope));
    s->parent = parent;
    s->vars = jv_dict(c);
    return s;
}

static jv *lookup(scope *sc, const char *name) {
    for (; sc; sc = sc->parent) {
        jv *v = jv_dict_gets(sc->vars, name);
        if (v) return v;
    }
    return NULL;
}

static void assign(jctx *c, scope *sc, const char *name, jv *v) {
    jv *d = sc->vars;
    size_t len = strlen(name);
    for (size_t i = 0; i < d->u.dict.n; i++) {
        jv *k = d->u.dict.k[i];
        if (k->u.str.len == len && !memcmp(k->u.str.s, name, len)) {
            d->u.dict.v[i] = v;
            return;
        }
    }
    /* a loop scope that was reset keeps its old keys past n: reuse the one in the next slot */
    jv *key = NULL;
    if (d->u.dict.n < d->u.dict.cap) {
        jv *old = d->u.dict.k[d->u.dict.n];
        if (old && old->u.str.len == len && !memcmp(old->u.str.s, name, len)) key = old;
    }
    jv_dict_set(c, d, key ? key : jv_strref(c, name, len), v);
}

/* Counts one unit of work (loop iteration, macro call) against the render's budget. */
static bool step(jctx *c) {
    if (++c->steps > JJ_MAX_STEPS) {
        jerr(c, "template ran too long (more than %d loop iterations and macro calls)",
             JJ_MAX_STEPS);
        return false;
    }
    if (c->ar.over_limit) {
        jerr(c, "template uses too much memory (more than %u MiB)", JJ_MAX_MEMORY >> 20);
        return false;
    }
    return !c->failed;
}

static void emit(jctx *c, const jv *v) {
    if (v->kind == JV_STR)
        ob_put(c, c->out, v->u.str.s, v->u.str.len);
    else
        jv_write_str(c, c->out, v);
}

/* ---- assignment targets ---- */
static void unpack_assign(jctx *c, scope *sc, const node *target, jv *v) {
    if (target->kind == E_NAME) {
        assign(c, sc, target->name, v);
        return;
    }
    if (target->kind == E_NSREF) {
        jv *ns = lookup(sc, target->a->name);
        if (!ns || ns->kind != JV_NS) {
            jerr(c, "can only assign attributes on a namespace() object, not %s",
                 ns ? jv_type_name(ns) : "an undefined value");
            return;
        }
        jv_dict_set(c, ns, jv_cstr(c, target->name), v);
        return;
    }
    /* tuple of names */
    jv *items = jinja_iter(c, v);
    if (!items) return;
    size_t want = (size_t)target->list.n;
    if (items->u.list.n != want) {
        if (items->u.list.n > want)
            jerr(c, "too many values to unpack (expected %zu)", want);
        else
            jerr(c, "not enough values to unpack (expected %zu, got %zu)", want, items->u.list.n);
        return;
    }
    for (size_t i = 0; i < want; i++) unpack_assign(c, sc, target->list.v[i], items->u.list.v[i]);
}

/* ---- calls ---- */
static bool eval_args(jctx *c, scope *sc, const node *nd, jargs *a) {
    int np = nd->list.n, nk = nd->list2.n;
    jv *star = NULL, *dstar = NULL;
    if (nd->b) {
        star = eval(c, sc, nd->b);
        if (c->failed) return false;
        star = jinja_iter(c, star);
        if (!star) return false;
        np += (int)star->u.list.n;
    }
    if (nd->c) {
        dstar = eval(c, sc, nd->c);
        if (c->failed) return false;
        if (dstar->kind != JV_DICT) {
            jerr(c, "argument after ** must be a mapping, not %s", jv_type_name(dstar));
            return false;
        }
        nk += (int)dstar->u.dict.n;
    }
    a->pos = arena_alloc(&c->ar, (size_t)(np + 1) * sizeof(jv *));
    a->kwn = arena_alloc(&c->ar, (size_t)(nk + 1) * sizeof(char *));
    a->kwv = arena_alloc(&c->ar, (size_t)(nk + 1) * sizeof(jv *));
    a->npos = a->nkw = 0;
    for (int i = 0; i < nd->list.n; i++) {
        a->pos[a->npos++] = eval(c, sc, nd->list.v[i]);
        if (c->failed) return false;
    }
    if (star)
        for (size_t i = 0; i < star->u.list.n; i++) a->pos[a->npos++] = star->u.list.v[i];
    for (int i = 0; i < nd->list2.n; i++) {
        a->kwn[a->nkw] = nd->kwnames[i];
        a->kwv[a->nkw++] = eval(c, sc, nd->list2.v[i]);
        if (c->failed) return false;
    }
    if (dstar)
        for (size_t i = 0; i < dstar->u.dict.n; i++) {
            jv *k = dstar->u.dict.k[i];
            if (k->kind != JV_STR) {
                jerr(c, "keywords must be strings");
                return false;
            }
            a->kwn[a->nkw] = arena_strndup(&c->ar, k->u.str.s, k->u.str.len);
            a->kwv[a->nkw++] = dstar->u.dict.v[i];
        }
    return true;
}

static jv *capture(jctx *c, scope *sc, const nodelist *body, int *status) {
    outbuf b = {0};
    outbuf *saved = c->out;
    c->out = &b;
    int st = exec_body(c, sc, body);
    c->out = saved;
    if (status) *status = st;
    jv *s = jv_str(c, b.s ? b.s : "", b.len);
    ob_free(&b);
    return s;
}

jv *jinja_call_macro(jctx *c, jv *fn, jargs *a) {
    const node *def = fn->u.fn.def;
    if (c->depth > JJ_MAX_DEPTH / 4 * 3) {
        jerr(c, "maximum recursion depth exceeded in macro '%s'", fn->u.fn.name);
        return JV_UNDEFINED;
    }
    if (!step(c)) return JV_UNDEFINED;
    scope *sc = new_scope(c, fn->u.fn.closure);
    int np = def->list.n;
    bool *given = arena_alloc(&c->ar, (size_t)(np + 1) * sizeof(bool));
    jv *varargs = jv_list(c, SEQ_TUPLE, 0);
    jv *kwargs = jv_dict(c);
    /* Jinja2 refuses arguments the macro has no place for (caller: the {% call %} form) */
    bool is_macro = fn->u.fn.kind == FN_MACRO;
    if (is_macro && a->npos > np && !(def->op & 1)) {
        jerr(c, "macro '%s' takes not more than %d argument(s)", fn->u.fn.name, np);
        return JV_UNDEFINED;
    }
    if (is_macro && fn->u.fn.caller && !(def->op & 4)) {
        jerr(c, "macro '%s' was invoked with two values for the special caller argument",
             fn->u.fn.name);
        return JV_UNDEFINED;
    }
    for (int i = 0; i < a->npos; i++) {
        if (i < np) {
            assign(c, sc, def->list.v[i]->name, a->pos[i]);
            given[i] = true;
        } else
            jv_list_push(c, varargs, a->pos[i]);
    }
    for (int k = 0; k < a->nkw; k++) {
        int i;
        for (i = 0; i < np; i++)
            if (!strcmp(def->list.v[i]->name, a->kwn[k])) break;
        if (i < np) {
            if (given[i]) {
                jerr(c, "macro '%s' got multiple values for argument '%s'", fn->u.fn.name,
                     a->kwn[k]);
                return JV_UNDEFINED;
            }
            assign(c, sc, def->list.v[i]->name, a->kwv[k]);
            given[i] = true;
        } else if (is_macro && !(def->op & 2)) {
            jerr(c, "macro '%s' takes no keyword argument '%s'", fn->u.fn.name, a->kwn[k]);
            return JV_UNDEFINED;
        } else
            jv_dict_set(c, kwargs, jv_cstr(c, a->kwn[k]), a->kwv[k]);
    }
    c->depth++;
    for (int i = 0; i < np && !c->failed; i++) {
        if (given[i]) continue;
        const node *d = def->list2.v[i];
        jv *v = d ? eval(c, sc, d)
                  : jv_undef(c, "parameter '%s' was not provided", def->list.v[i]->name);
        assign(c, sc, def->list.v[i]->name, v);
    }
    assign(c, sc, "varargs", varargs);
    assign(c, sc, "kwargs", kwargs);
    if (fn->u.fn.caller) assign(c, sc, "caller", fn->u.fn.caller);
    jv *r = c->failed ? JV_UNDEFINED : capture(c, sc, &def->list3, NULL);
    c->depth--;
    return r;
}

jv *jinja_call(jctx *c, jv *fn, jargs *a) {
    if (fn->kind == JV_UNDEF) return jerr_undef(c, fn);
    if (fn->kind != JV_FUNC) {
        jerr(c, "'%s' object is not callable", jv_type_name(fn));
        return JV_UNDEFINED;
    }
    if (fn->u.fn.kind == FN_BUILTIN) return fn->u.fn.fn(c, fn->u.fn.self, a);
    return jinja_call_macro(c, fn, a);
}

static jv *make_macro(jctx *c, scope *sc, const node *def, const char *name, jfn_kind kind) {
    jv *fn = jv_new(c, JV_FUNC);
    fn->u.fn.kind = kind;
    fn->u.fn.name = name;
    fn->u.fn.def = def;
    fn->u.fn.closure = sc;
    return fn;
}

/* ---- expressions ---- */
static jv *eval_filter(jctx *c, scope *sc, const node *nd) {
    jv *in = nd->a ? eval(c, sc, nd->a) : c->filter_input;
    if (c->failed) return JV_UNDEFINED;
    if (!nd->filter) {
        jerr(c, "no filter named '%s'", nd->name);
        return JV_UNDEFINED;
    }
    jargs a;
    if (!eval_args(c, sc, nd, &a)) return JV_UNDEFINED;
    // cppcheck-suppress returnDanglingLifetime ; filters return arena values, never &a
    return nd->filter(c, in, &a);
}

/* A literal Jinja2 can evaluate when it compiles (NULL: an absent slice bound). */
static bool is_literal(const node *nd) {
    if (!nd || nd->kind == E_CONST) return true;
    switch (nd->kind) {
    case E_LIST:
    case E_TUPLE:
    case E_DICT:
    case E_NEG:
    case E_POS:
    case E_NOT:
    case E_BIN:
    case E_AND:
    case E_OR:
    case E_CMP:
    case E_CONCAT:
    case E_COND:
    case E_SLICE:
    case E_ITEM:
    case E_ATTR:
    case E_TEST:
        break;
    case E_FILTER:
        /* filters that take Jinja's context are not folded */
        if (!nd->a || !strcmp(nd->name, "map") || !strcmp(nd->name, "select") ||
            !strcmp(nd->name, "reject") || !strcmp(nd->name, "selectattr") ||
            !strcmp(nd->name, "rejectattr"))
            return false;
        break;
    default:
        return false;
    }
    if (!is_literal(nd->a) || !is_literal(nd->b) || !is_literal(nd->c) || !is_literal(nd->d))
        return false;
    for (int i = 0; i < nd->list.n; i++)
        if (!is_literal(nd->list.v[i])) return false;
    for (int i = 0; i < nd->list2.n; i++)
        if (!is_literal(nd->list2.v[i])) return false;
    return true;
}

static bool slice_bound_ok(const jv *v) {
    return v->kind == JV_NONE || v->kind == JV_INT || v->kind == JV_BOOL;
}

static bool slice_would_work(const jv *o, const jv *a, const jv *b, const jv *s) {
    if (o->kind != JV_STR && !jv_is_seq(o)) return false;
    if (!slice_bound_ok(a) || !slice_bound_ok(b) || !slice_bound_ok(s)) return false;
    return !(s->kind == JV_INT && s->u.i == 0) && !(s->kind == JV_BOOL && !s->u.b);
}

static jv *eval_inner(jctx *c, scope *sc, const node *nd) {
    switch (nd->kind) {
    case E_CONST:
        return nd->value;
    case E_NAME: {
        jv *v = lookup(sc, nd->name);
        return v ? v : jv_undef(c, "'%s' is undefined", nd->name);
    }
    case E_LIST:
    case E_TUPLE: {
        jv *l = jv_list(c, nd->kind == E_LIST ? SEQ_LIST : SEQ_TUPLE, (size_t)nd->list.n);
        for (int i = 0; i < nd->list.n && !c->failed; i++)
            jv_list_push(c, l, eval(c, sc, nd->list.v[i]));
        return l;
    }
    case E_DICT: {
        jv *d = jv_dict(c);
        for (int i = 0; i < nd->list.n && !c->failed; i++) {
            jv *k = eval(c, sc, nd->list.v[i]);
            jv *v = eval(c, sc, nd->list2.v[i]);
            if (k->kind == JV_LIST || k->kind == JV_DICT || k->kind == JV_NS) {
                jerr(c, "unhashable type: '%s'", jv_type_name(k));
                break;
            }
            jv_dict_set(c, d, k, v);
        }
        return d;
    }
    case E_ATTR: {
        jv *o = eval(c, sc, nd->a);
        if (c->failed) return JV_UNDEFINED;
        return jinja_getattr(c, o, nd->name, strlen(nd->name));
    }
    case E_ITEM: {
        jv *o = eval(c, sc, nd->a);
        jv *k = c->failed ? JV_UNDEFINED : eval(c, sc, nd->b);
        if (c->failed) return JV_UNDEFINED;
        return jinja_getitem(c, o, k);
    }
    case E_SLICE: {
        /* a slice inside a tuple subscript (x[1:, 2]) only ever misses: any key will do */
        if (!nd->a) return JV_NONEV;
        jv *o = eval(c, sc, nd->a);
        jv *a = nd->b ? eval(c, sc, nd->b) : JV_NONEV;
        jv *b = nd->c ? eval(c, sc, nd->c) : JV_NONEV;
        jv *s = nd->d ? eval(c, sc, nd->d) : JV_NONEV;
        if (c->failed) return JV_UNDEFINED;
        /* a {{ }} made only of literals is computed when Jinja2 compiles the template,
         * through its getitem, which gives undefined where Python would raise */
        if (c->folding && o->kind == JV_UNDEF) return jerr_undef(c, o); /* its __getitem__ fails */
        if (c->folding && !slice_would_work(o, a, b, s))
            return jv_undef(c, "'%s' object cannot be sliced that way", jv_type_name(o));
        return jinja_slice(c, o, a, b, s);
    }
    case E_CALL: {
        jv *fn = eval(c, sc, nd->a);
        if (c->failed) return JV_UNDEFINED;
        jargs a;
        if (!eval_args(c, sc, nd, &a)) return JV_UNDEFINED;
        return jinja_call(c, fn, &a);
    }
    case E_FILTER:
        return eval_filter(c, sc, nd);
    case E_TEST: {
        jv *v = eval(c, sc, nd->a);
        if (c->failed) return JV_UNDEFINED;
        jargs a;
        if (!eval_args(c, sc, nd, &a)) return JV_UNDEFINED;
        if (!nd->test) {
            jerr(c, "no test named '%s'", nd->name);
            return JV_UNDEFINED;
        }
        int r = nd->test(c, v, &a);
        if (r < 0) return JV_UNDEFINED;
        return JV_BOOLV(nd->flag ? !r : r);
    }
    case E_BIN: {
        jv *a = eval(c, sc, nd->a);
        jv *b = c->failed ? JV_UNDEFINED : eval(c, sc, nd->b);
        if (c->failed) return JV_UNDEFINED;
        return py_binop(c, nd->op, a, b);
    }
    case E_NEG:
    case E_POS: {
        jv *v = eval(c, sc, nd->a);
        if (c->failed) return JV_UNDEFINED;
        bool neg = nd->kind == E_NEG;
        if (v->kind == JV_INT || v->kind == JV_BOOL) {
            long long i = v->kind == JV_INT ? v->u.i : v->u.b;
            return jv_int(c, neg ? -i : i);
        }
        if (v->kind == JV_FLOAT) return jv_float(c, neg ? -v->u.f : v->u.f);
        if (v->kind == JV_UNDEF) return jerr_undef(c, v);
        jerr(c, "bad operand type for unary %c: '%s'", neg ? '-' : '+', jv_type_name(v));
        return JV_UNDEFINED;
    }
    case E_NOT: {
        jv *v = eval(c, sc, nd->a);
        return JV_BOOLV(!jv_truthy(v));
    }
    case E_AND:
    case E_OR: {
        jv *a = eval(c, sc, nd->a);
        if (c->failed) return JV_UNDEFINED;
        if (jv_truthy(a) == (nd->kind == E_OR)) return a;
        return eval(c, sc, nd->b);
    }
    case E_CMP: {
        jv *left = eval(c, sc, nd->a);
        for (int i = 0; i < nd->list.n; i++) {
            if (c->failed) return JV_UNDEFINED;
            jv *right = eval(c, sc, nd->list.v[i]);
            if (c->failed) return JV_UNDEFINED;
            int r = py_compare(c, nd->ops[i], left, right);
            if (r < 0) return JV_UNDEFINED;
            if (!r) return JV_BOOLV(false);
            left = right;
        }
        return JV_BOOLV(true);
    }
    case E_COND: {
        jv *cond = eval(c, sc, nd->b);
        if (c->failed) return JV_UNDEFINED;
        if (jv_truthy(cond)) return eval(c, sc, nd->a);
        if (nd->c) return eval(c, sc, nd->c);
        return jv_undef(c,
                        "the inline if-expression on line %d evaluated to false and no else "
                        "section was defined",
                        nd->line);
    }
    case E_CONCAT: {
        outbuf b = {0};
        for (int i = 0; i < nd->list.n && !c->failed; i++)
            jv_write_str(c, &b, eval(c, sc, nd->list.v[i]));
        jv *r = jv_str(c, b.s ? b.s : "", b.len);
        ob_free(&b);
        return r;
    }
    default:
        jerr(c, "cannot evaluate this expression");
        return JV_UNDEFINED;
    }
}

static jv *eval(jctx *c, scope *sc, const node *nd) {
    if (c->failed) return JV_UNDEFINED;
    if (c->depth > JJ_MAX_DEPTH) {
        jerr(c, "template is nested too deeply (maximum recursion depth exceeded)");
        return JV_UNDEFINED;
    }
    c->line = nd->line;
    c->depth++;
    jv *r = eval_inner(c, sc, nd);
    c->depth--;
    return r;
}

/* ---- statements ---- */
static int exec_for(jctx *c, scope *sc, const node *nd) {
    jv *seq = eval(c, sc, nd->b);
    if (c->failed) return ST_ERR;
    jv *items = jinja_iter(c, seq);
    if (!items) return ST_ERR;
    if (nd->c) {
        /* `for x in xs if cond`: the loop (and loop.length) sees only the kept items */
        jv *kept = jv_list(c, SEQ_LIST, items->u.list.n);
        scope *fs = new_scope(c, sc);
        for (size_t i = 0; i < items->u.list.n; i++) {
            if (!step(c)) return ST_ERR;
            fs->vars->u.dict.n = 0;
            unpack_assign(c, fs, nd->a, items->u.list.v[i]);
            jv *keep = eval(c, fs, nd->c);
            if (c->failed) return ST_ERR;
            if (jv_truthy(keep)) jv_list_push(c, kept, items->u.list.v[i]);
        }
        items = kept;
    }
    if (!items->u.list.n) return exec_body(c, sc, &nd->list2) == ST_ERR ? ST_ERR : ST_OK;
    jloop *lp = arena_alloc(&c->ar, sizeof(jloop));
    lp->items = items->u.list.v;
    lp->n = (long long)items->u.list.n;
    jv *loopv = jv_new(c, JV_LOOP);
    loopv->u.loop = lp;
    /* one scope for all iterations, emptied each time, unless a macro defined in the body
     * could keep a reference to it */
    scope *shared = nd->flag ? NULL : new_scope(c, sc);
    for (lp->i = 0; lp->i < lp->n; lp->i++) {
        if (!step(c)) return ST_ERR;
        scope *it = shared ? shared : new_scope(c, sc);
        it->vars->u.dict.n = 0;
        unpack_assign(c, it, nd->a, lp->items[lp->i]);
        assign(c, it, "loop", loopv);
        if (c->failed) return ST_ERR;
        int st = exec_body(c, it, &nd->list);
        if (st == ST_ERR) return ST_ERR;
        if (st == ST_BREAK) break;
    }
    return ST_OK;
}

static jv *apply_filter_chain(jctx *c, scope *sc, const node *chain, jv *input) {
    jv *saved = c->filter_input;
    c->filter_input = input;
    jv *r = eval(c, sc, chain);
    c->filter_input = saved;
    return r;
}

static int exec_stmt(jctx *c, scope *sc, const node *nd) {
    if (c->failed) return ST_ERR;
    c->line = nd->line;
    switch (nd->kind) {
    case N_TEXT:
        ob_put(c, c->out, nd->value->u.str.s, nd->value->u.str.len);
        break;
    case N_OUTPUT: {
        jv *v;
        if (is_literal(nd->a)) {
            /* Jinja2 computes a {{ }} of literals when it compiles the template, where its
             * getitem turns a failed subscript into undefined; if that computation fails
             * anyway, it runs the expression normally */
            c->folding = true;
            v = eval(c, sc, nd->a);
            c->folding = false;
            if (c->failed) {
                c->failed = false;
                c->err[0] = 0;
                v = eval(c, sc, nd->a);
            }
        } else
            v = eval(c, sc, nd->a);
        if (!c->failed) emit(c, v);
        break;
    }
    case N_IF: {
        jv *cond = eval(c, sc, nd->a);
        if (c->failed) return ST_ERR;
        return exec_body(c, sc, jv_truthy(cond) ? &nd->list : &nd->list2);
    }
    case N_FOR:
        return exec_for(c, sc, nd);
    case N_SET: {
        jv *v = eval(c, sc, nd->b);
        if (!c->failed) unpack_assign(c, sc, nd->a, v);
        break;
    }
    case N_SETBLOCK: {
        /* the body has its own scope: what it sets stays inside */
        int st;
        jv *v = capture(c, new_scope(c, sc), &nd->list3, &st);
        if (nd->c && !c->failed) v = apply_filter_chain(c, sc, nd->c, v);
        if (!c->failed) unpack_assign(c, sc, nd->a, v);
        if (st != ST_OK) return st;
        break;
    }
    case N_MACRO:
        assign(c, sc, nd->name, make_macro(c, sc, nd, nd->name, FN_MACRO));
        break;
    case N_CALLBLOCK: {
        const node *call = nd->a;
        jv *fn = eval(c, sc, call->a);
        if (c->failed) return ST_ERR;
        jargs a;
        if (!eval_args(c, sc, call, &a)) return ST_ERR;
        if (fn->kind != JV_FUNC || fn->u.fn.kind == FN_BUILTIN) {
            jv *r = jinja_call(c, fn, &a);
            if (!c->failed) emit(c, r);
            break;
        }
        jv *with_caller = jv_new(c, JV_FUNC);
        *with_caller = *fn;
        with_caller->u.fn.caller = make_macro(c, sc, nd, "caller", FN_CALLER);
        jv *r = jinja_call_macro(c, with_caller, &a);
        if (!c->failed) emit(c, r);
        break;
    }
    case N_BREAK:
        return ST_BREAK;
    case N_CONTINUE:
        return ST_CONTINUE;
    case N_FILTERBLOCK: {
        int st;
        jv *v = capture(c, new_scope(c, sc), &nd->list3, &st);
        if (!c->failed) v = apply_filter_chain(c, sc, nd->c, v);
        if (!c->failed) emit(c, v);
        if (st != ST_OK) return st;
        break;
    }
    case N_WITH: {
        scope *ws = new_scope(c, sc);
        jv **vals = arena_alloc(&c->ar, (size_t)(nd->list2.n + 1) * sizeof(jv *));
        for (int i = 0; i < nd->list2.n; i++) vals[i] = eval(c, sc, nd->list2.v[i]);
        for (int i = 0; i < nd->list.n && !c->failed; i++)
            unpack_assign(c, ws, nd->list.v[i], vals[i]);
        if (c->failed) return ST_ERR;
        return exec_body(c, ws, &nd->list3);
    }
    case N_SCOPE:
        return exec_body(c, new_scope(c, sc), &nd->list3);
    default:
        jerr(c, "cannot execute this statement");
        break;
    }
    return c->failed ? ST_ERR : ST_OK;
}

static int exec_body(jctx *c, scope *sc, const nodelist *body) {
    if (c->depth > JJ_MAX_DEPTH) {
        jerr(c, "template is nested too deeply (maximum recursion depth exceeded)");
        return ST_ERR;
    }
    c->depth++;
    int st = ST_OK;
    for (int i = 0; i < body->n; i++) {
        st = exec_stmt(c, sc, body->v[i]);
        if (st != ST_OK) break;
    }
    c->depth--;
    return c->failed ? ST_ERR : st;
}

char *jinja_render(const jinja_template *t, const json_t *vars, size_t *out_len) {
    jctx *c = xcalloc(1, sizeof(*c));
    c->ar.limit = JJ_MAX_MEMORY;
    scope *root = new_scope(c, NULL);
    jinja_add_globals(c, root->vars);
    if (vars) {
        for (void *it = json_object_iter((json_t *)vars); it;
             it = json_object_iter_next((json_t *)vars, it))
            jv_dict_set(c, root->vars, jv_cstr(c, json_object_iter_key(it)),
                        jv_from_json(c, json_object_iter_value(it)));
    }
    outbuf out = {0};
    c->out = &out;
    exec_body(c, root, &t->body);
    /* callers get a C string: refuse rather than cut a prompt at a NUL character */
    if (!c->failed && out.len && memchr(out.s, 0, out.len))
        jerr(c, "the rendered prompt contains a NUL character");
    char *result = NULL;
    if (c->failed) {
        /* one line: control characters of a raise_exception() message become spaces */
        for (char *p = c->err; *p; p++)
            if ((unsigned char)*p < 0x20) *p = ' ';
        kiln_error("chat template error at line %d: %s", c->line, c->err);
        ob_free(&out);
    } else {
        result = out.s ? out.s : xstrdup("");
        if (out_len) *out_len = out.len;
    }
    arena_free(&c->ar);
    free(c);
    return result;
}
