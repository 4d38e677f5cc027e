/*
 * jinja_impl.h — private to the text layer: the pieces of kiln's Jinja interpreter (values,
 * arena, lexer tokens, AST, evaluator context). Chat templates are rendered the way
 * transformers does it: Python's Jinja2 in an ImmutableSandboxedEnvironment with
 * trim_blocks and lstrip_blocks, so values follow Python semantics (str(), repr(), json.dumps).
 */
#ifndef KILN_JINJA_IMPL_H
#define KILN_JINJA_IMPL_H

#include "base/base.h"

/* ---- limits that keep a hostile template from crashing or hanging the process ---- */
#define JJ_MAX_OUTPUT      (16u << 20)  /* bytes of rendered text (and of any one string) */
#define JJ_MAX_MEMORY      (256u << 20) /* bytes the values of one render may use */
#define JJ_MAX_DEPTH       400          /* nested evaluation (macro recursion counts here) */
#define JJ_MAX_STEPS       1000000      /* loop iterations + macro calls per render */
#define JJ_MAX_ITEMS       1000000      /* items in one list */
#define JJ_MAX_RANGE       100000       /* as Jinja's sandbox (MAX_RANGE) */
#define JJ_MAX_PARSE_DEPTH 200

/* ---- arena: everything of one parse or one render lives here and dies with it ---- */
typedef struct arena_chunk arena_chunk;
typedef struct arena {
    arena_chunk *head;
    size_t total;
    size_t limit;
    bool over_limit; /* set when total passed limit; the evaluator turns it into an error */
} arena;
void *arena_alloc(arena *a, size_t n); /* zeroed, never NULL */
char *arena_strndup(arena *a, const char *s, size_t n);
void arena_free(arena *a);

/* ---- values (Python objects as Jinja2 sees them) ---- */
typedef enum {
    JV_UNDEF,
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,
    JV_LIST, /* list, tuple, generator or dict view: see seq */
    JV_DICT,
    JV_NS, /* namespace(): a dict whose attributes can be assigned */
    JV_FUNC,
    JV_LOOP,
} jv_kind;

typedef enum { SEQ_LIST, SEQ_TUPLE, SEQ_GEN, SEQ_ITEMS, SEQ_KEYS, SEQ_VALUES } jv_seq;

typedef struct jv jv;
typedef struct jctx jctx;
typedef struct node node;
typedef struct scope scope;

typedef struct jargs {
    jv **pos;
    int npos;
    const char **kwn;
    jv **kwv;
    int nkw;
} jargs;

typedef jv *(*jbuiltin)(jctx *c, jv *self, jargs *a);
typedef enum { FN_BUILTIN, FN_MACRO, FN_CALLER } jfn_kind;

typedef struct jloop {
    jv **items;
    long long n, i;
    jv *last_changed; /* loop.changed(): the values of its last call (NULL: none yet) */
} jloop;

struct jv {
    jv_kind kind;
    union {
        bool b;
        long long i;
        double f;
        struct {
            const char *s;
            size_t len;
            bool safe; /* markupsafe.Markup (from |safe): `+` escapes the other side */
        } str;
        struct {
            jv **v;
            size_t n, cap;
            jv_seq seq;
        } list;
        struct {
            jv **k, **v;
            size_t n, cap;
        } dict;
        struct {
            jfn_kind kind;
            const char *name;
            jbuiltin fn;
            jv *self;
            const node *def; /* macro or call block */
            scope *closure;
            jv *caller; /* a call block's caller, given to the macro */
        } fn;
        struct {
            const char *msg; /* why it is undefined: "'x' is undefined" */
        } undef;
        jloop *loop;
    } u;
};

/* ---- evaluation context ---- */
typedef struct outbuf {
    char *s;
    size_t len, cap;
} outbuf;

struct scope {
    scope *parent;
    jv *vars; /* a JV_DICT */
};

struct jctx {
    arena ar;
    char err[512];
    bool failed;
    int line;
    int depth;
    long long steps;
    outbuf *out;
    jv *filter_input; /* the body of {% filter %} / block set while its filters run */
    bool folding;     /* evaluating a {{ }} of literals, which Jinja2 folds at compile time */
    const char *src_name;
};

/* values.c */
extern jv jv_undefined_v, jv_none_v, jv_true_v, jv_false_v;
#define JV_UNDEFINED (&jv_undefined_v)
#define JV_NONEV     (&jv_none_v)
#define JV_BOOLV(b)  ((b) ? &jv_true_v : &jv_false_v)
jv *jv_new(jctx *c, jv_kind kind);
jv *jv_int(jctx *c, long long i);
jv *jv_float(jctx *c, double f);
jv *jv_str(jctx *c, const char *s, size_t len);    /* copies */
jv *jv_strref(jctx *c, const char *s, size_t len); /* keeps the pointer */
jv *jv_cstr(jctx *c, const char *s);
jv *jv_list(jctx *c, jv_seq seq, size_t cap);
void jv_list_push(jctx *c, jv *list, jv *item);
jv *jv_dict(jctx *c);
jv *jv_dict_get(const jv *d, const jv *key);
jv *jv_dict_gets(const jv *d, const char *key);
jv *jv_dict_getn(const jv *d, const char *key, size_t len);
void jv_dict_set(jctx *c, jv *d, jv *key, jv *val);
jv *jv_undef(jctx *c, const char *fmt, ...) KILN_PRINTF(2, 3);
jv *jv_builtin(jctx *c, const char *name, jbuiltin fn, jv *self);
jv *jv_from_json(jctx *c, const json_t *j);
bool jv_truthy(const jv *v);
bool jv_eq(const jv *a, const jv *b);
const char *jv_type_name(const jv *v);
bool jv_is_seq(const jv *v); /* list or tuple (indexable, has len) */

/* Text forms: str() and repr() append to a buffer; jv_to_str returns a JV_STR. */
void ob_put(jctx *c, outbuf *b, const char *s, size_t n);
void ob_putc(jctx *c, outbuf *b, char ch);
void ob_free(outbuf *b);
void jv_write_str(jctx *c, outbuf *b, const jv *v);
void jv_write_repr(jctx *c, outbuf *b, const jv *v);
jv *jv_to_str(jctx *c, const jv *v);
jv *jv_repr(jctx *c, const jv *v);
void py_float_repr(double f, char *buf, size_t n);
/* json.dumps(v, ensure_ascii, indent, separators, sort_keys); NULL indent = None. */
jv *jv_tojson(jctx *c, const jv *v, const jv *indent, const char *item_sep, const char *key_sep,
              bool ensure_ascii, bool sort_keys);

/* Errors: the first one wins; evaluation unwinds by checking c->failed. */
void jerr(jctx *c, const char *fmt, ...) KILN_PRINTF(2, 3);
/* An operation on an undefined value: fails with its message. */
jv *jerr_undef(jctx *c, const jv *u);

/* ---- UTF-8 and Python str helpers (jinja_str.c) ---- */
size_t u8_decode(const char *s, size_t len, size_t i, int32_t *cp); /* returns bytes used (>=1) */
size_t u8_encode(int32_t cp, char *out);
size_t u8_count(const char *s, size_t len);
/* Makes a message valid UTF-8 in place (a cut or broken sequence becomes '?'). */
void utf8_sanitize(char *s);
bool py_isspace(int32_t cp);
bool py_isprintable(int32_t cp);
jv *py_str_upper(jctx *c, const jv *s);
jv *py_str_lower(jctx *c, const jv *s);
jv *py_str_title(jctx *c, const jv *s);
jv *py_str_capitalize(jctx *c, const jv *s);
jv *py_str_strip(jctx *c, const jv *s, const jv *chars, bool left, bool right);
jv *py_str_replace(jctx *c, const jv *s, const jv *old, const jv *new_, long long count);
jv *py_str_split(jctx *c, const jv *s, const jv *sep, long long maxsplit, bool from_right);
jv *py_str_index(jctx *c, const jv *s, long long idx); /* one code point, or NULL if out of range */
jv *py_str_chars(jctx *c, const jv *s);                /* list of one-character strings */
jv *py_percent_format(jctx *c, const jv *fmt, const jv *args);
jv *py_str_format(jctx *c, const jv *fmt, jargs *a);
jv *html_escape(jctx *c, const jv *s); /* markupsafe.escape: & < > " ' */
long long py_str_find(const jv *s, const jv *sub, bool from_right); /* code point index or -1 */

/* ---- lexer and parser (jinja_lex.c, jinja_parse.c) ---- */
typedef enum {
    T_EOF,
    T_DATA,
    T_VAR_BEGIN,
    T_VAR_END,
    T_BLOCK_BEGIN,
    T_BLOCK_END,
    T_NAME,
    T_STRING,
    T_INT,
    T_FLOAT,
    T_OP,
} tok_kind;

typedef struct token {
    tok_kind kind;
    int line;
    const char *s; /* text: name, operator, decoded string or data (in the template's arena) */
    size_t len;
    long long i;
    double f;
} token;

/* Tokenizes source as Jinja2 does with trim_blocks and lstrip_blocks. -1 + error. */
int jinja_lex(arena *a, const char *src, size_t len, token **toks, size_t *n, char *err,
              size_t errlen);

typedef enum {
    N_TEXT,
    N_OUTPUT,
    N_IF,
    N_FOR,
    N_SET,
    N_SETBLOCK,
    N_MACRO,
    N_CALLBLOCK,
    N_BREAK,
    N_CONTINUE,
    N_FILTERBLOCK,
    N_WITH,
    N_SCOPE, /* a body that just runs (generation) */
    E_CONST,
    E_NAME,
    E_LIST,
    E_TUPLE,
    E_DICT,
    E_ATTR,
    E_ITEM,
    E_SLICE,
    E_CALL,
    E_FILTER,
    E_TEST,
    E_BIN,
    E_NEG,
    E_POS,
    E_NOT,
    E_AND,
    E_OR,
    E_CMP,
    E_COND,
    E_CONCAT,
    E_NSREF, /* assignment target ns.attr */
} node_kind;

typedef struct nodelist {
    node **v;
    int n;
} nodelist;

typedef jv *(*jfilter)(jctx *c, jv *value, jargs *a);
typedef int (*jtest)(jctx *c, jv *value, jargs *a); /* 1 true, 0 false, -1 error */

struct node {
    node_kind kind;
    int line;
    int op;    /* operator (OP_*); for a macro: 1 uses varargs, 2 kwargs, 4 caller */
    bool flag; /* test negated; for-loop: the body defines macros (its scope may be kept) */
    const char *name;
    jv *value;
    node *a, *b, *c, *d;
    nodelist list, list2, list3;
    const char **kwnames;
    int *ops;
    jfilter filter;
    jtest test;
};

typedef struct jinja_template {
    arena ar;
    nodelist body;
} jinja_template;

jinja_template *jinja_parse(const char *src, size_t len); /* NULL + kiln_error */
void jinja_free(jinja_template *t);
/* Renders with the variables of VARS (a JSON object); NULL + kiln_error with the line. */
char *jinja_render(const jinja_template *t, const json_t *vars, size_t *out_len);

/* ---- filters, tests, globals and methods (jinja_filters.c, jinja_methods.c) ---- */
jfilter jinja_find_filter(const char *name);
jtest jinja_find_test(const char *name);
void jinja_add_globals(jctx *c, jv *vars);
/* obj.name as the sandbox sees it: a method, an item, or undefined. */
jv *jinja_getattr(jctx *c, jv *obj, const char *name, size_t len);
jv *jinja_getitem(jctx *c, jv *obj, jv *key);
jv *jinja_slice(jctx *c, jv *obj, jv *start, jv *stop, jv *step);
/* Iterating: the items of a list/tuple/dict(keys)/string; NULL + error when not iterable. */
jv *jinja_iter(jctx *c, jv *v);
jv *jinja_call(jctx *c, jv *fn, jargs *a);
/* Python operators. */
jv *py_binop(jctx *c, int op, jv *a, jv *b);
int py_compare(jctx *c, int op, jv *a, jv *b); /* 1/0, -1 error */
int py_contains(jctx *c, jv *container, jv *item);
long long py_len(jctx *c, jv *v); /* -1 + error */
/* Binds arguments to names as Python would; out[i] NULL where not given. false + error. */
bool bind_args(jctx *c, const char *fname, jargs *a, const char *const *names, int n, jv **out);

/* Operator codes (two characters packed). */
#define OP2(a, b) ((a) | ((b) << 8))
#define OP_ADD    '+'
#define OP_SUB    '-'
#define OP_MUL    '*'
#define OP_DIV    '/'
#define OP_FDIV   OP2('/', '/')
#define OP_MOD    '%'
#define OP_POW    OP2('*', '*')
#define OP_EQ     OP2('=', '=')
#define OP_NE     OP2('!', '=')
#define OP_LT     '<'
#define OP_LE     OP2('<', '=')
#define OP_GT     '>'
#define OP_GE     OP2('>', '=')
#define OP_IN     OP2('i', 'n')
#define OP_NOTIN  OP2('n', 'i')

/* Evaluator entry points shared with filters (macros and callers are called through here). */
jv *jinja_call_macro(jctx *c, jv *fn, jargs *a);

#endif
