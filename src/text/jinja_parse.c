/*
 * jinja_parse.c — recursive-descent parser from tokens to the AST, following Jinja2's
 * grammar and operator precedence (parser.py): statements if/for/set/macro/call/filter/with/
 * break/continue/generation, and expressions from the conditional `a if c else b` down to
 * filters, tests, calls, attributes and slices. Unknown filters and tests are errors here,
 * as Jinja2 reports them when it compiles a template.
 */
#include "text/jinja_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    arena *ar;
    token *t;
    size_t n, i;
    int depth;
    int loops; /* enclosing for-loops (break/continue are only valid inside one) */
    char err[400];
    bool failed;
} parser;

static void perr(parser *P, int line, const char *fmt, ...) KILN_PRINTF(3, 4);
static void perr(parser *P, int line, const char *fmt, ...) {
    if (P->failed) return;
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(P->err, sizeof(P->err), "line %d: %s", line, msg);
    utf8_sanitize(P->err);
    P->failed = true;
}

static token *cur(parser *P) {
    return &P->t[P->i];
}
static token *peek(parser *P, size_t k) {
    return P->i + k < P->n ? &P->t[P->i + k] : &P->t[P->n - 1];
}
static void advance(parser *P) {
    if (P->i + 1 < P->n) P->i++;
}

static bool is_op(const token *t, int op) {
    return t->kind == T_OP && t->i == op;
}
static bool is_name(const token *t, const char *name) {
    return t->kind == T_NAME && t->len == strlen(name) && !memcmp(t->s, name, t->len);
}

static const char *describe(parser *P, const token *t) {
    switch (t->kind) {
    case T_EOF:
        return "end of template";
    case T_VAR_END:
        return "end of print statement";
    case T_BLOCK_END:
        return "end of statement block";
    case T_VAR_BEGIN:
        return "begin of print statement";
    case T_BLOCK_BEGIN:
        return "begin of statement block";
    case T_STRING:
        return "string";
    case T_INT:
        return "integer";
    case T_FLOAT:
        return "float";
    default:
        return arena_strndup(P->ar, t->s ? t->s : "?", t->len);
    }
}

static bool expect_op(parser *P, int op, const char *what) {
    if (!is_op(cur(P), op)) {
        perr(P, cur(P)->line, "expected '%s', got '%s'", what, describe(P, cur(P)));
        return false;
    }
    advance(P);
    return true;
}

static node *mk(parser *P, node_kind kind, int line) {
    node *nd = arena_alloc(P->ar, sizeof(node));
    nd->kind = kind;
    nd->line = line;
    return nd;
}

typedef struct vec {
    node **v;
    int n, cap;
} vec;

static void vpush(parser *P, vec *v, node *nd) {
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 4;
        node **nv = arena_alloc(P->ar, (size_t)cap * sizeof(node *));
        if (v->n) memcpy(nv, v->v, (size_t)v->n * sizeof(node *));
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = nd;
}

static nodelist as_list(vec *v) {
    return (nodelist){v->v, v->n};
}

static const char *name_str(parser *P, const token *t) {
    return arena_strndup(P->ar, t->s, t->len);
}

static node *parse_expression(parser *P, bool with_condexpr);
static node *parse_or(parser *P);
static node *parse_unary(parser *P, bool with_filter);
static node *parse_primary(parser *P);
static node *parse_postfix(parser *P, node *nd);
static node *parse_filter_expr(parser *P, node *nd);

static bool enter(parser *P) {
    if (++P->depth > JJ_MAX_PARSE_DEPTH) {
        perr(P, cur(P)->line, "template is nested too deeply");
        return false;
    }
    return true;
}

/* is the current token an end of a tuple (extra: a name that also ends it) */
static bool tuple_end(parser *P, const char *extra) {
    token *t = cur(P);
    if (t->kind == T_VAR_END || t->kind == T_BLOCK_END || t->kind == T_EOF || is_op(t, ')'))
        return true;
    return extra && is_name(t, extra);
}

/* parse_tuple: `a, b` makes a tuple; mode 0 full expressions, 1 without conditional,
 * 2 primaries (assignment targets). */
static node *parse_tuple(parser *P, int mode, const char *extra, bool explicit_parens) {
    int line = cur(P)->line;
    vec items = {0};
    bool is_tuple = false;
    for (;;) {
        if (items.n && !expect_op(P, ',', ",")) return NULL;
        if (tuple_end(P, extra)) break;
        node *e = mode == 2 ? parse_primary(P) : parse_expression(P, mode == 0);
        if (!e) return NULL;
        vpush(P, &items, e);
        if (is_op(cur(P), ','))
            is_tuple = true;
        else
            break;
    }
    if (!is_tuple) {
        if (items.n) return items.v[0];
        if (!explicit_parens) {
            perr(P, cur(P)->line, "expected an expression, got '%s'", describe(P, cur(P)));
            return NULL;
        }
    }
    node *t = mk(P, E_TUPLE, line);
    t->list = as_list(&items);
    return t;
}

static node *parse_expression(parser *P, bool with_condexpr) {
    if (!enter(P)) return NULL;
    node *e = parse_or(P);
    if (!e) return NULL;
    while (with_condexpr && is_name(cur(P), "if")) {
        int line = cur(P)->line;
        advance(P);
        node *cond = parse_or(P);
        if (!cond) return NULL;
        node *other = NULL;
        if (is_name(cur(P), "else")) {
            advance(P);
            other = parse_expression(P, true);
            if (!other) return NULL;
        }
        node *ce = mk(P, E_COND, line);
        ce->a = e;
        ce->b = cond;
        ce->c = other;
        e = ce;
    }
    P->depth--;
    return e;
}

/* operand (KEYWORD operand)*, left-associative: "and" and "or". */
static node *parse_keyword_chain(parser *P, const char *keyword, int kind,
                                 node *(*operand)(parser *)) {
    node *l = operand(P);
    if (!l) return NULL;
    while (is_name(cur(P), keyword)) {
        int line = cur(P)->line;
        advance(P);
        node *r = operand(P);
        if (!r) return NULL;
        node *b = mk(P, kind, line);
        b->a = l;
        b->b = r;
        l = b;
    }
    return l;
}

static node *parse_not(parser *P);
static node *parse_and(parser *P) {
    return parse_keyword_chain(P, "and", E_AND, parse_not);
}

static node *parse_or(parser *P) {
    return parse_keyword_chain(P, "or", E_OR, parse_and);
}

static node *parse_math1(parser *P);
static node *parse_compare(parser *P) {
    int line = cur(P)->line;
    node *first = parse_math1(P);
    if (!first) return NULL;
    vec operands = {0};
    int ops[64];
    int nops = 0;
    for (;;) {
        token *t = cur(P);
        int op = 0;
        if (t->kind == T_OP && (t->i == OP_EQ || t->i == OP_NE || t->i == OP_LT || t->i == OP_LE ||
                                t->i == OP_GT || t->i == OP_GE)) {
            op = (int)t->i;
            advance(P);
        } else if (is_name(t, "in")) {
            op = OP_IN;
            advance(P);
        } else if (is_name(t, "not") && is_name(peek(P, 1), "in")) {
            op = OP_NOTIN;
            advance(P);
            advance(P);
        } else
            break;
        if (nops == 64) {
            perr(P, t->line, "too many chained comparisons");
            return NULL;
        }
        node *r = parse_math1(P);
        if (!r) return NULL;
        ops[nops++] = op;
        vpush(P, &operands, r);
    }
    if (!nops) return first;
    node *c = mk(P, E_CMP, line);
    c->a = first;
    c->list = as_list(&operands);
    c->ops = arena_alloc(P->ar, (size_t)nops * sizeof(int));
    memcpy(c->ops, ops, (size_t)nops * sizeof(int));
    return c;
}

static node *parse_not(parser *P) {
    if (is_name(cur(P), "not")) {
        int line = cur(P)->line;
        advance(P);
        if (!enter(P)) return NULL;
        node *x = parse_not(P);
        P->depth--;
        if (!x) return NULL;
        node *n = mk(P, E_NOT, line);
        n->a = x;
        return n;
    }
    return parse_compare(P);
}

static node *binop(parser *P, int op, node *l, node *r, int line) {
    node *b = mk(P, E_BIN, line);
    b->op = op;
    b->a = l;
    b->b = r;
    return b;
}

static node *parse_pow(parser *P) {
    node *l = parse_unary(P, true);
    while (l && is_op(cur(P), OP_POW)) {
        int line = cur(P)->line;
        advance(P);
        node *r = parse_unary(P, true);
        if (!r) return NULL;
        l = binop(P, OP_POW, l, r, line);
    }
    return l;
}

static node *parse_math2(parser *P) {
    node *l = parse_pow(P);
    while (l) {
        token *t = cur(P);
        if (!(t->kind == T_OP && (t->i == '*' || t->i == '/' || t->i == OP_FDIV || t->i == '%')))
            break;
        int op = (int)t->i, line = t->line;
        advance(P);
        node *r = parse_pow(P);
        if (!r) return NULL;
        l = binop(P, op, l, r, line);
    }
    return l;
}

static node *parse_concat(parser *P) {
    int line = cur(P)->line;
    node *first = parse_math2(P);
    if (!first || !is_op(cur(P), '~')) return first;
    vec args = {0};
    vpush(P, &args, first);
    while (is_op(cur(P), '~')) {
        advance(P);
        node *r = parse_math2(P);
        if (!r) return NULL;
        vpush(P, &args, r);
    }
    node *c = mk(P, E_CONCAT, line);
    c->list = as_list(&args);
    return c;
}

static node *parse_math1(parser *P) {
    node *l = parse_concat(P);
    while (l && (is_op(cur(P), '+') || is_op(cur(P), '-'))) {
        int op = (int)cur(P)->i, line = cur(P)->line;
        advance(P);
        node *r = parse_concat(P);
        if (!r) return NULL;
        l = binop(P, op, l, r, line);
    }
    return l;
}

static node *parse_unary(parser *P, bool with_filter) {
    token *t = cur(P);
    node *nd;
    if (!enter(P)) return NULL;
    if (is_op(t, '-') || is_op(t, '+')) {
        advance(P);
        node *x = parse_unary(P, false);
        if (!x) return NULL;
        nd = mk(P, t->i == '-' ? E_NEG : E_POS, t->line);
        nd->a = x;
    } else
        nd = parse_primary(P);
    if (nd) nd = parse_postfix(P, nd);
    if (nd && with_filter) nd = parse_filter_expr(P, nd);
    P->depth--;
    return nd;
}

static node *parse_primary(parser *P) {
    token *t = cur(P);
    node *nd;
    switch (t->kind) {
    case T_NAME:
        if (is_name(t, "true") || is_name(t, "True") || is_name(t, "false") ||
            is_name(t, "False")) {
            nd = mk(P, E_CONST, t->line);
            nd->value = JV_BOOLV(t->s[0] == 't' || t->s[0] == 'T');
        } else if (is_name(t, "none") || is_name(t, "None")) {
            nd = mk(P, E_CONST, t->line);
            nd->value = JV_NONEV;
        } else {
            nd = mk(P, E_NAME, t->line);
            nd->name = name_str(P, t);
        }
        advance(P);
        return nd;
    case T_STRING: {
        /* adjacent string literals join, as in Python */
        size_t total = 0, k = P->i;
        while (k < P->n && P->t[k].kind == T_STRING) total += P->t[k++].len;
        char *buf = arena_alloc(P->ar, total + 1);
        size_t o = 0;
        while (cur(P)->kind == T_STRING) {
            memcpy(buf + o, cur(P)->s, cur(P)->len);
            o += cur(P)->len;
            advance(P);
        }
        nd = mk(P, E_CONST, t->line);
        nd->value = arena_alloc(P->ar, sizeof(jv));
        nd->value->kind = JV_STR;
        nd->value->u.str.s = buf;
        nd->value->u.str.len = total;
        return nd;
    }
    case T_INT:
    case T_FLOAT:
        nd = mk(P, E_CONST, t->line);
        nd->value = arena_alloc(P->ar, sizeof(jv));
        nd->value->kind = t->kind == T_INT ? JV_INT : JV_FLOAT;
        if (t->kind == T_INT)
            nd->value->u.i = t->i;
        else
            nd->value->u.f = t->f;
        advance(P);
        return nd;
    case T_OP:
        if (t->i == '(') {
            advance(P);
            nd = parse_tuple(P, 0, NULL, true);
            if (!nd || !expect_op(P, ')', ")")) return NULL;
            return nd;
        }
        if (t->i == '[') {
            advance(P);
            vec items = {0};
            while (!is_op(cur(P), ']')) {
                if (items.n && !expect_op(P, ',', ",")) return NULL;
                if (is_op(cur(P), ']')) break;
                node *e = parse_expression(P, true);
                if (!e) return NULL;
                vpush(P, &items, e);
            }
            advance(P);
            nd = mk(P, E_LIST, t->line);
            nd->list = as_list(&items);
            return nd;
        }
        if (t->i == '{') {
            advance(P);
            vec keys = {0}, vals = {0};
            while (!is_op(cur(P), '}')) {
                if (keys.n && !expect_op(P, ',', ",")) return NULL;
                if (is_op(cur(P), '}')) break;
                node *k = parse_expression(P, true);
                if (!k || !expect_op(P, ':', ":")) return NULL;
                node *v = parse_expression(P, true);
                if (!v) return NULL;
                vpush(P, &keys, k);
                vpush(P, &vals, v);
            }
            advance(P);
            nd = mk(P, E_DICT, t->line);
            nd->list = as_list(&keys);
            nd->list2 = as_list(&vals);
            return nd;
        }
        break;
    default:
        break;
    }
    perr(P, t->line, "unexpected '%s'", describe(P, t));
    return NULL;
}

/* (args, name=value, *args, **kwargs) into nd->list / list2+kwnames / b / c */
static bool parse_call_args(parser *P, node *nd) {
    if (!expect_op(P, '(', "(")) return false;
    vec pos = {0}, kwv = {0};
    const char *names[256] = {0};
    int nkw = 0;
    bool first = true;
    while (!is_op(cur(P), ')')) {
        if (!first && !expect_op(P, ',', ",")) return false;
        first = false;
        if (is_op(cur(P), ')')) break;
        if (is_op(cur(P), '*')) {
            advance(P);
            if (!(nd->b = parse_expression(P, true))) return false;
        } else if (is_op(cur(P), OP_POW)) {
            advance(P);
            if (!(nd->c = parse_expression(P, true))) return false;
        } else if (cur(P)->kind == T_NAME && is_op(peek(P, 1), '=')) {
            if (nkw == 256) {
                perr(P, cur(P)->line, "too many keyword arguments");
                return false;
            }
            for (int k = 0; k < nkw; k++)
                if (is_name(cur(P), names[k])) {
                    perr(P, cur(P)->line, "keyword argument repeated: %s", names[k]);
                    return false;
                }
            names[nkw++] = name_str(P, cur(P));
            advance(P);
            advance(P);
            node *v = parse_expression(P, true);
            if (!v) return false;
            vpush(P, &kwv, v);
        } else {
            if (nkw || nd->b || nd->c) {
                perr(P, cur(P)->line, "invalid syntax for function call expression");
                return false;
            }
            node *v = parse_expression(P, true);
            if (!v) return false;
            vpush(P, &pos, v);
        }
    }
    advance(P);
    nd->list = as_list(&pos);
    nd->list2 = as_list(&kwv);
    nd->kwnames = arena_alloc(P->ar, (size_t)(nkw ? nkw : 1) * sizeof(char *));
    memcpy(nd->kwnames, names, (size_t)nkw * sizeof(char *));
    return true;
}

static node *parse_subscribed(parser *P) {
    int line = cur(P)->line;
    node *args[3] = {0};
    if (is_op(cur(P), ':')) {
        advance(P);
    } else {
        node *e = parse_expression(P, true);
        if (!e || !is_op(cur(P), ':')) return e;
        advance(P);
        args[0] = e;
    }
    if (!is_op(cur(P), ':') && !is_op(cur(P), ']') && !is_op(cur(P), ',')) {
        if (!(args[1] = parse_expression(P, true))) return NULL;
    }
    if (is_op(cur(P), ':')) {
        advance(P);
        if (!is_op(cur(P), ']') && !is_op(cur(P), ',')) {
            if (!(args[2] = parse_expression(P, true))) return NULL;
        }
    }
    node *s = mk(P, E_SLICE, line);
    s->b = args[0];
    s->c = args[1];
    s->d = args[2];
    return s;
}

static node *parse_postfix(parser *P, node *nd) {
    while (nd) {
        token *t = cur(P);
        if (is_op(t, '.')) {
            advance(P);
            token *a = cur(P);
            if (a->kind == T_NAME) {
                node *g = mk(P, E_ATTR, t->line);
                g->a = nd;
                g->name = name_str(P, a);
                advance(P);
                nd = g;
            } else if (a->kind == T_INT) {
                node *g = mk(P, E_ITEM, t->line);
                g->a = nd;
                g->b = mk(P, E_CONST, a->line);
                g->b->value = arena_alloc(P->ar, sizeof(jv));
                g->b->value->kind = JV_INT;
                g->b->value->u.i = a->i;
                advance(P);
                nd = g;
            } else {
                perr(P, a->line, "expected name or number after '.'");
                return NULL;
            }
        } else if (is_op(t, '[')) {
            advance(P);
            vec args = {0};
            while (!is_op(cur(P), ']')) {
                if (args.n && !expect_op(P, ',', ",")) return NULL;
                node *s = parse_subscribed(P);
                if (!s) return NULL;
                vpush(P, &args, s);
            }
            advance(P);
            node *key = args.n ? args.v[0] : NULL;
            if (args.n != 1) { /* x[] is x[()], x[a, b] is x[(a, b)] */
                key = mk(P, E_TUPLE, t->line);
                key->list = as_list(&args);
            }
            if (key->kind == E_SLICE && !key->a) {
                key->a = nd;
                nd = key;
            } else {
                node *g = mk(P, E_ITEM, t->line);
                g->a = nd;
                g->b = key;
                nd = g;
            }
        } else if (is_op(t, '(')) {
            node *c = mk(P, E_CALL, t->line);
            c->a = nd;
            if (!parse_call_args(P, c)) return NULL;
            nd = c;
        } else
            break;
    }
    return nd;
}

/* dotted filter/test names */
static const char *parse_dotted(parser *P) {
    token *t = cur(P);
    if (t->kind != T_NAME) {
        perr(P, t->line, "expected a filter or test name, got '%s'", describe(P, t));
        return NULL;
    }
    char buf[256];
    snprintf(buf, sizeof(buf), "%.*s", (int)t->len, t->s);
    advance(P);
    while (is_op(cur(P), '.') && peek(P, 1)->kind == T_NAME) {
        advance(P);
        size_t l = strlen(buf);
        snprintf(buf + l, sizeof(buf) - l, ".%.*s", (int)cur(P)->len, cur(P)->s);
        advance(P);
    }
    return arena_strndup(P->ar, buf, strlen(buf));
}

static node *parse_filter(parser *P, node *input, int line) {
    /* at the token after '|' */
    const char *name = parse_dotted(P);
    if (!name) return NULL;
    node *f = mk(P, E_FILTER, line);
    f->a = input;
    f->name = name;
    f->filter = jinja_find_filter(name); /* unknown: checked by check_names() */
    if (is_op(cur(P), '(')) {
        if (!parse_call_args(P, f)) return NULL;
    } else
        f->kwnames = arena_alloc(P->ar, sizeof(char *));
    return f;
}

static node *parse_filter_expr(parser *P, node *nd) {
    while (nd) {
        token *t = cur(P);
        if (is_op(t, '|')) {
            advance(P);
            nd = parse_filter(P, nd, t->line);
        } else if (is_name(t, "is")) {
            advance(P);
            bool neg = false;
            if (is_name(cur(P), "not")) {
                neg = true;
                advance(P);
            }
            const char *name = parse_dotted(P);
            if (!name) return NULL;
            node *te = mk(P, E_TEST, t->line);
            te->a = nd;
            te->name = name;
            te->flag = neg;
            te->test = jinja_find_test(name);
            token *a = cur(P);
            if (is_op(a, '(')) {
                if (!parse_call_args(P, te)) return NULL;
            } else {
                te->kwnames = arena_alloc(P->ar, sizeof(char *));
                bool arg_start = a->kind == T_NAME || a->kind == T_STRING || a->kind == T_INT ||
                                 a->kind == T_FLOAT || is_op(a, '[') || is_op(a, '{');
                if (arg_start && !is_name(a, "else") && !is_name(a, "or") && !is_name(a, "and")) {
                    if (is_name(a, "is")) {
                        perr(P, a->line, "you cannot chain multiple tests with is");
                        return NULL;
                    }
                    node *arg = parse_primary(P);
                    if (arg) arg = parse_postfix(P, arg);
                    if (!arg) return NULL;
                    vec v = {0};
                    vpush(P, &v, arg);
                    te->list = as_list(&v);
                }
            }
            nd = te;
        } else if (is_op(t, '(')) {
            node *c = mk(P, E_CALL, t->line);
            c->a = nd;
            if (!parse_call_args(P, c)) return NULL;
            nd = c;
        } else
            break;
    }
    return nd;
}

/* ---- names of filters and tests ----
 * Jinja2 rejects an unknown filter or test when it compiles the template, except inside an
 * if-statement or a conditional expression (a "soft" frame), where it fails only if run. */
static void check_names(parser *P, const node *nd, bool soft);

static void check_list(parser *P, const nodelist *l, bool soft) {
    for (int i = 0; i < l->n && !P->failed; i++) check_names(P, l->v[i], soft);
}

static void check_names(parser *P, const node *nd, bool soft) {
    if (!nd || P->failed) return;
    switch (nd->kind) {
    case N_IF:
        check_names(P, nd->a, true);
        check_list(P, &nd->list, true);
        check_list(P, &nd->list2, true);
        return;
    case N_FOR:
        check_names(P, nd->b, soft);
        check_names(P, nd->c, false);
        check_list(P, &nd->list, false);
        check_list(P, &nd->list2, false);
        return;
    case N_MACRO:
        check_list(P, &nd->list2, false);
        check_list(P, &nd->list3, false);
        return;
    case N_CALLBLOCK:
        check_names(P, nd->a, soft);
        check_list(P, &nd->list2, false);
        check_list(P, &nd->list3, false);
        return;
    case N_SETBLOCK:
    case N_FILTERBLOCK:
        check_names(P, nd->c, false);
        check_list(P, &nd->list3, false);
        return;
    case N_WITH:
        check_list(P, &nd->list2, soft);
        check_list(P, &nd->list3, false);
        return;
    case N_SCOPE:
        check_list(P, &nd->list3, false);
        return;
    case E_COND:
        soft = true;
        break;
    case E_FILTER:
        if (!nd->filter && !soft) perr(P, nd->line, "no filter named '%s'", nd->name);
        break;
    case E_TEST:
        if (!nd->test && !soft) perr(P, nd->line, "no test named '%s'", nd->name);
        break;
    default:
        break;
    }
    check_names(P, nd->a, soft);
    check_names(P, nd->b, soft);
    check_names(P, nd->c, soft);
    check_names(P, nd->d, soft);
    check_list(P, &nd->list, soft);
    check_list(P, &nd->list2, soft);
    check_list(P, &nd->list3, soft);
}

/* Does a macro body use the name (varargs, kwargs, caller) anywhere? */
static bool uses_name(const node *nd, const char *name) {
    if (!nd) return false;
    if (nd->kind == E_NAME && !strcmp(nd->name, name)) return true;
    const nodelist *lists[] = {&nd->list, &nd->list2, &nd->list3};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < lists[k]->n; i++)
            if (uses_name(lists[k]->v[i], name)) return true;
    return uses_name(nd->a, name) || uses_name(nd->b, name) || uses_name(nd->c, name) ||
           uses_name(nd->d, name);
}

static bool body_uses(const nodelist *body, const char *name) {
    for (int i = 0; i < body->n; i++)
        if (uses_name(body->v[i], name)) return true;
    return false;
}

/* ---- statements ---- */

/* Does a body define a macro or call block anywhere (such a closure may outlive its scope)? */
static bool defines_closures(const nodelist *body) {
    for (int i = 0; i < body->n; i++) {
        const node *nd = body->v[i];
        if (nd->kind == N_MACRO || nd->kind == N_CALLBLOCK) return true;
        if (nd->kind >= E_CONST) continue;
        if (defines_closures(&nd->list) || defines_closures(&nd->list2) ||
            defines_closures(&nd->list3))
            return true;
    }
    return false;
}
static bool parse_body(parser *P, const char *const *ends, int nends, vec *out);

static bool expect_block_end(parser *P) {
    if (cur(P)->kind != T_BLOCK_END) {
        perr(P, cur(P)->line, "expected end of statement block, got '%s'", describe(P, cur(P)));
        return false;
    }
    advance(P);
    return true;
}

/* The end of a tag that opens a body; Jinja2 allows a colon there ({% else: %}). */
static bool expect_body_start(parser *P) {
    if (is_op(cur(P), ':')) advance(P);
    return expect_block_end(P);
}

/* Parses statements until {% END %} for one of ENDS; leaves the parser after END's name. */
static int parse_until(parser *P, const char *const *ends, int nends, vec *out) {
    if (!parse_body(P, ends, nends, out)) return -1;
    for (int k = 0; k < nends; k++)
        if (is_name(cur(P), ends[k])) {
            advance(P);
            return k;
        }
    return -1;
}

/* Parses statements up to one of ends (the last is the block's own end tag); an unclosed block
 * is an error naming the tag. Returns the index of the end found, or -1. */
static int block_body(parser *P, const char *tag, const char *const *ends, int n, int line,
                      vec *out) {
    int k = parse_until(P, ends, n, out);
    if (k < 0 && !P->failed)
        perr(P, line, "unexpected end of template: '%s' was not closed by '%s'", tag, ends[n - 1]);
    return k;
}

/* The body of block `tag` after its header: the header's closing %}, then statements up to the
 * one end tag `end` (consumed), into *out; -1 on error (reported). */
static int closed_body(parser *P, const char *tag, const char *end, int line, nodelist *out) {
    if (!expect_body_start(P)) return -1;
    const char *const ends[] = {end};
    vec body = {0};
    if (block_body(P, tag, ends, 1, line, &body) < 0) return -1;
    *out = as_list(&body);
    return 0;
}

static node *parse_assign_target(parser *P, bool with_namespace, const char *extra) {
    token *t = cur(P);
    if (with_namespace && t->kind == T_NAME && is_op(peek(P, 1), '.') &&
        peek(P, 2)->kind == T_NAME) {
        node *nd = mk(P, E_NSREF, t->line);
        nd->a = mk(P, E_NAME, t->line);
        nd->a->name = name_str(P, t);
        advance(P);
        advance(P);
        nd->name = name_str(P, cur(P));
        advance(P);
        return nd;
    }
    node *nd = parse_tuple(P, 2, extra, false);
    if (!nd) return NULL;
    if (nd->kind == E_NAME) return nd;
    if (nd->kind == E_TUPLE) {
        for (int i = 0; i < nd->list.n; i++)
            if (nd->list.v[i]->kind != E_NAME) goto bad;
        return nd;
    }
bad:
    perr(P, t->line, "can't assign to this expression");
    return NULL;
}

static node *parse_macro_params(parser *P, node *nd) {
    vec params = {0}, defaults = {0};
    if (!expect_op(P, '(', "(")) return NULL;
    while (!is_op(cur(P), ')')) {
        if (params.n && !expect_op(P, ',', ",")) return NULL;
        if (is_op(cur(P), ')')) break;
        if (cur(P)->kind != T_NAME) {
            perr(P, cur(P)->line, "expected a parameter name");
            return NULL;
        }
        node *pn = mk(P, E_NAME, cur(P)->line);
        pn->name = name_str(P, cur(P));
        advance(P);
        node *def = NULL;
        if (is_op(cur(P), '=')) {
            advance(P);
            if (!(def = parse_expression(P, true))) return NULL;
        } else if (defaults.n && defaults.v[defaults.n - 1]) {
            perr(P, pn->line, "non-default argument follows default argument");
            return NULL;
        }
        vpush(P, &params, pn);
        vpush(P, &defaults, def);
    }
    advance(P);
    nd->list = as_list(&params);
    nd->list2 = as_list(&defaults);
    return nd;
}

static node *parse_filter_chain(parser *P, int line) {
    /* {% filter a|b(x) %}: a chain whose innermost input is the block (a == NULL) */
    node *f = NULL;
    for (;;) {
        f = parse_filter(P, f, line);
        if (!f) return NULL;
        if (!is_op(cur(P), '|')) return f;
        advance(P);
    }
}

static node *parse_statement(parser *P) {
    token *t = cur(P);
    int line = t->line;
    if (t->kind != T_NAME) {
        perr(P, line, "tag name expected");
        return NULL;
    }
    if (is_name(t, "if")) {
        advance(P);
        node *nd = mk(P, N_IF, line), *top = nd;
        for (;;) {
            if (!(nd->a = parse_tuple(P, 1, NULL, false)) || !expect_body_start(P)) return NULL;
            static const char *const ends[] = {"elif", "else", "endif"};
            vec body = {0};
            int k = block_body(P, "if", ends, 3, line, &body);
            if (k < 0) return NULL;
            nd->list = as_list(&body);
            if (k == 0) {
                node *next = mk(P, N_IF, cur(P)->line);
                vec eb = {0};
                vpush(P, &eb, next);
                nd->list2 = as_list(&eb);
                nd = next;
                continue;
            }
            if (k == 1) {
                if (closed_body(P, "if", "endif", line, &nd->list2) < 0) return NULL;
            }
            return top;
        }
    }
    if (is_name(t, "for")) {
        advance(P);
        node *nd = mk(P, N_FOR, line);
        if (!(nd->a = parse_assign_target(P, false, "in"))) return NULL;
        if (!is_name(cur(P), "in")) {
            perr(P, cur(P)->line, "expected 'in' in a for loop");
            return NULL;
        }
        advance(P);
        if (!(nd->b = parse_tuple(P, 1, "recursive", false))) return NULL;
        if (is_name(cur(P), "if")) {
            advance(P);
            if (!(nd->c = parse_expression(P, true))) return NULL;
        }
        if (is_name(cur(P), "recursive")) {
            perr(P, cur(P)->line, "recursive for loops are not supported");
            return NULL;
        }
        if (!expect_body_start(P)) return NULL;
        static const char *const ends[] = {"else", "endfor"};
        vec body = {0};
        P->loops++;
        int k = block_body(P, "for", ends, 2, line, &body);
        P->loops--;
        if (k < 0) return NULL;
        nd->list = as_list(&body);
        nd->flag = defines_closures(&nd->list);
        if (k == 0) {
            if (closed_body(P, "for", "endfor", line, &nd->list2) < 0) return NULL;
        }
        return nd;
    }
    if (is_name(t, "set")) {
        advance(P);
        node *target = parse_assign_target(P, true, NULL);
        if (!target) return NULL;
        if (is_op(cur(P), '=')) {
            advance(P);
            node *nd = mk(P, N_SET, line);
            nd->a = target;
            if (!(nd->b = parse_tuple(P, 0, NULL, false))) return NULL;
            return nd;
        }
        node *nd = mk(P, N_SETBLOCK, line);
        nd->a = target;
        if (is_op(cur(P), '|')) {
            advance(P);
            if (!(nd->c = parse_filter_chain(P, line))) return NULL;
        }
        if (closed_body(P, "set", "endset", line, &nd->list3) < 0) return NULL;
        return nd;
    }
    if (is_name(t, "macro") || is_name(t, "call")) {
        bool is_call = is_name(t, "call");
        advance(P);
        node *nd = mk(P, is_call ? N_CALLBLOCK : N_MACRO, line);
        if (is_call) {
            if (is_op(cur(P), '(') && !parse_macro_params(P, nd)) return NULL;
            node *call = parse_expression(P, true);
            if (!call) return NULL;
            if (call->kind != E_CALL) {
                perr(P, line, "expected call");
                return NULL;
            }
            nd->a = call;
        } else {
            if (cur(P)->kind != T_NAME) {
                perr(P, line, "expected a macro name");
                return NULL;
            }
            nd->name = name_str(P, cur(P));
            advance(P);
            if (!parse_macro_params(P, nd)) return NULL;
        }
        if (!expect_body_start(P)) return NULL;
        const char *const ends[] = {is_call ? "endcall" : "endmacro"};
        vec body = {0};
        int saved_loops = P->loops;
        P->loops = 0;
        int k = block_body(P, is_call ? "call" : "macro", ends, 1, line, &body);
        P->loops = saved_loops;
        if (k < 0) return NULL;
        nd->list3 = as_list(&body);
        /* which of Jinja's special macro names the body uses (op bits: 1 varargs, 2 kwargs,
         * 4 caller); a call that needs one the body does not use is an error */
        nd->op = (body_uses(&nd->list3, "varargs") ? 1 : 0) |
                 (body_uses(&nd->list3, "kwargs") ? 2 : 0) |
                 (body_uses(&nd->list3, "caller") ? 4 : 0);
        return nd;
    }
    if (is_name(t, "break") || is_name(t, "continue")) {
        if (!P->loops) {
            perr(P, line, "'%.*s' outside of a loop", (int)t->len, t->s);
            return NULL;
        }
        advance(P);
        return mk(P, t->s[0] == 'b' ? N_BREAK : N_CONTINUE, line);
    }
    if (is_name(t, "filter")) {
        advance(P);
        node *nd = mk(P, N_FILTERBLOCK, line);
        if (!(nd->c = parse_filter_chain(P, line)) ||
            closed_body(P, "filter", "endfilter", line, &nd->list3) < 0)
            return NULL;
        return nd;
    }
    if (is_name(t, "with")) {
        advance(P);
        node *nd = mk(P, N_WITH, line);
        vec targets = {0}, values = {0};
        while (cur(P)->kind != T_BLOCK_END) {
            if (targets.n && !expect_op(P, ',', ",")) return NULL;
            node *tg = parse_assign_target(P, false, NULL);
            if (!tg || !expect_op(P, '=', "=")) return NULL;
            node *v = parse_expression(P, true);
            if (!v) return NULL;
            vpush(P, &targets, tg);
            vpush(P, &values, v);
        }
        nd->list = as_list(&targets);
        nd->list2 = as_list(&values);
        if (closed_body(P, "with", "endwith", line, &nd->list3) < 0) return NULL;
        return nd;
    }
    if (is_name(t, "generation")) {
        advance(P);
        node *nd = mk(P, N_SCOPE, line);
        if (closed_body(P, "generation", "endgeneration", line, &nd->list3) < 0) return NULL;
        return nd;
    }
    perr(P, line, "encountered unknown tag '%s'", describe(P, t));
    return NULL;
}

/* Statements and text until EOF or a {% NAME %} where NAME is one of ENDS (not consumed). */
static bool parse_body(parser *P, const char *const *ends, int nends, vec *out) {
    if (!enter(P)) return false;
    for (;;) {
        token *t = cur(P);
        if (t->kind == T_EOF) break;
        if (t->kind == T_DATA) {
            node *nd = mk(P, N_TEXT, t->line);
            nd->value = arena_alloc(P->ar, sizeof(jv));
            nd->value->kind = JV_STR;
            nd->value->u.str.s = t->s;
            nd->value->u.str.len = t->len;
            vpush(P, out, nd);
            advance(P);
            continue;
        }
        if (t->kind == T_VAR_BEGIN) {
            advance(P);
            node *nd = mk(P, N_OUTPUT, t->line);
            if (!(nd->a = parse_tuple(P, 0, NULL, false))) return false;
            if (cur(P)->kind != T_VAR_END) {
                perr(P, cur(P)->line, "expected end of print statement, got '%s'",
                     describe(P, cur(P)));
                return false;
            }
            advance(P);
            vpush(P, out, nd);
            continue;
        }
        if (t->kind == T_BLOCK_BEGIN) {
            advance(P);
            for (int k = 0; k < nends; k++)
                if (is_name(cur(P), ends[k])) {
                    P->depth--;
                    return true;
                }
            node *nd = parse_statement(P);
            if (!nd) return false;
            if (!expect_block_end(P)) return false;
            vpush(P, out, nd);
            continue;
        }
        perr(P, t->line, "unexpected '%s'", describe(P, t));
        return false;
    }
    P->depth--;
    if (nends) {
        perr(P, cur(P)->line, "unexpected end of template, expected '%s'", ends[nends - 1]);
        return false;
    }
    return true;
}

jinja_template *jinja_parse(const char *src, size_t len) {
    /* transformers reads templates as UTF-8 text: anything else cannot be a template */
    for (size_t i = 0; i < len;) {
        int32_t cp;
        size_t k = u8_decode(src, len, i, &cp);
        bool bad = k == 1 && (unsigned char)src[i] >= 0x80;
        if (bad || cp == 0) {
            kiln_error("chat template is not valid UTF-8 text (byte %zu)", i);
            return NULL;
        }
        i += k;
    }
    jinja_template *t = xcalloc(1, sizeof(*t));
    token *toks = NULL;
    size_t n = 0;
    char err[400];
    if (jinja_lex(&t->ar, src, len, &toks, &n, err, sizeof(err)) < 0) {
        kiln_error("chat template syntax error at %s", err);
        jinja_free(t);
        return NULL;
    }
    parser P = {.ar = &t->ar, .t = toks, .n = n};
    vec body = {0};
    bool ok = parse_body(&P, NULL, 0, &body);
    if (ok) {
        nodelist all = as_list(&body);
        check_list(&P, &all, false);
        ok = !P.failed;
    }
    free(toks);
    if (!ok) {
        kiln_error("chat template syntax error at %s", P.err);
        jinja_free(t);
        return NULL;
    }
    t->body = as_list(&body);
    return t;
}

void jinja_free(jinja_template *t) {
    if (!t) return;
    arena_free(&t->ar);
    free(t);
}
