/*
 * tok_internal.h — private to the tokenizer files of src/text: the tokenizer struct and the
 * pieces it is built from (hash maps, normalizers, pre-tokenizers, the BPE model, added
 * tokens, decoders). The face is text.h; nothing outside src/text includes this.
 */
#ifndef KILN_TOK_INTERNAL_H
#define KILN_TOK_INTERNAL_H

#include "text/text.h"

#include <pthread.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* ---- small containers ---- */
typedef struct tbuf { /* growable byte string, always NUL-terminated once used */
    char *p;
    size_t n, cap;
} tbuf;
void tbuf_reserve(tbuf *b, size_t extra);
void tbuf_put(tbuf *b, const void *s, size_t n);
void tbuf_putc(tbuf *b, char c);
void tbuf_free(tbuf *b);

typedef struct ivec {
    int32_t *p;
    size_t n, cap;
} ivec;
void ivec_push(ivec *v, int32_t x);
void ivec_append(ivec *v, const int32_t *x, size_t n);

uint64_t tok_hash(const void *data, size_t n);

/* string -> int32, open addressing; keys are not copied (the caller keeps them alive) */
typedef struct strmap_slot {
    const char *key; /* NULL: empty */
    uint32_t len;
    int32_t val;
    uint32_t hash; /* low bits of the hash */
    uint32_t pad;
    uint64_t prefix; /* the key's first 8 bytes: short keys compare without a pointer chase */
} strmap_slot;
typedef struct strmap {
    strmap_slot *slots;
    size_t cap, count;
} strmap;
void strmap_init(strmap *m, size_t expected);
void strmap_free(strmap *m);
/* Inserts or overwrites. */
void strmap_put(strmap *m, const char *key, size_t len, int32_t val);
/* Returns the value or -1. */
int32_t strmap_get(const strmap *m, const char *key, size_t len);
/* The same with the key's tok_hash known; prefetch warms its slot ahead of a batch of gets. */
int32_t strmap_get_hashed(const strmap *m, const char *key, size_t len, uint64_t hash);
void strmap_prefetch(const strmap *m, uint64_t hash);

/* (id, id) -> (rank, merged id) for BPE merges */
typedef struct pair_slot {
    uint64_t key; /* UINT64_MAX: empty */
    int32_t rank, id;
} pair_slot;
typedef struct pairmap {
    pair_slot *slots;
    size_t cap, count;
} pairmap;
void pairmap_init(pairmap *m, size_t expected);
void pairmap_free(pairmap *m);
void pairmap_put(pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t id);
const pair_slot *pairmap_get(const pairmap *m, int32_t a, int32_t b);
void pairmap_prefetch(const pairmap *m, int32_t a, int32_t b);

/* ---- UTF-8 ---- */
/* Returns the byte offset of the first invalid sequence, or len when all is valid. */
size_t utf8_check(const char *s, size_t len);
/* Length of the UTF-8 sequence starting with byte c (1 for invalid lead bytes). */
static inline int utf8_len(unsigned char c) {
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF8 ? 4 : 1;
}
/* Decodes one code point of valid UTF-8 at s; sets *n to its length. */
int32_t utf8_decode(const char *s, int *n);
int utf8_encode(int32_t cp, char *out); /* returns length (1-4) */

/* ---- regular expressions (PCRE2 with JIT, UTF + UCP) ---- */
pcre2_code *tok_regex_compile(const char *pattern, size_t len, bool literal, const char *what);
/* Finds the next match at or after *start; returns 1 with [*ms, *me), 0 when none, -1 on error. */
int tok_regex_next(const pcre2_code *re, pcre2_match_data *md, const char *s, size_t len,
                   size_t start, size_t *ms, size_t *me);

/* ---- normalizers ---- */
enum norm_kind {
    NORM_NFC,
    NORM_NFD,
    NORM_NFKC,
    NORM_NFKD,
    NORM_LOWERCASE,
    NORM_STRIP,
    NORM_STRIP_ACCENTS,
    NORM_PREPEND,
    NORM_REPLACE,
};
typedef struct normalizer {
    enum norm_kind kind;
    char *text;    /* Prepend's text, Replace's content */
    char *pattern; /* Replace's string pattern */
    size_t pattern_len;
    pcre2_code *re;   /* Replace's regex pattern */
    bool left, right; /* Strip */
} normalizer;

/* ---- pre-tokenizers ---- */
enum pretok_kind {
    PRE_BYTE_LEVEL,
    PRE_SPLIT,
    PRE_METASPACE,
    PRE_DIGITS,
    PRE_PUNCTUATION,
    PRE_WHITESPACE,
    PRE_WHITESPACE_SPLIT,
};
enum split_behavior {
    SPLIT_REMOVED,
    SPLIT_ISOLATED,
    SPLIT_MERGED_WITH_PREVIOUS,
    SPLIT_MERGED_WITH_NEXT,
    SPLIT_CONTIGUOUS,
};
enum prepend_scheme { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER };
typedef struct pretokenizer {
    enum pretok_kind kind;
    enum split_behavior behavior;
    bool invert;
    pcre2_code *re;        /* Split, ByteLevel with use_regex, Whitespace */
    bool add_prefix_space; /* ByteLevel */
    char replacement[8];   /* Metaspace (UTF-8) */
    enum prepend_scheme prepend;
    bool split;             /* Metaspace */
    bool individual_digits; /* Digits */
} pretokenizer;

/* ---- decoders ---- */
enum decoder_kind {
    DEC_BYTE_LEVEL,
    DEC_METASPACE,
    DEC_REPLACE,
    DEC_BYTE_FALLBACK,
    DEC_FUSE,
    DEC_STRIP,
};
typedef struct decoder {
    enum decoder_kind kind;
    char *pattern, *content; /* Replace (string patterns), Strip's content char, Metaspace's */
    int start, stop;         /* Strip */
    bool prepend;            /* Metaspace: prepend_scheme != never */
} decoder;

/* ---- added tokens: a byte trie for longest-match splitting ---- */
typedef struct added_token {
    char *content;
    size_t len;
    int32_t id;
    bool special, lstrip, rstrip, single_word, normalized;
} added_token;
typedef struct added_trie {
    pairmap edges;  /* (node, byte) -> child node */
    int32_t *token; /* by node: index into added[], or -1 */
    size_t n_nodes;
    int32_t root[256]; /* the root's children, 0 when none */
} added_trie;

/* ---- the word cache of the BPE model (word bytes -> ids), shared by threads ---- */
typedef struct word_cache {
    pthread_mutex_t lock;
    strmap index;      /* word -> index into entries */
    int32_t **entries; /* each: n_ids, ids..., then the word's bytes (the index's key) */
    size_t n, cap;
} word_cache;

/* ---- the tokenizer ---- */
struct tokenizer {
    bool llama2c; /* a llama2.c tok.bin: run.c's encode (scores, dummy prefix) */
    int32_t n_vocab;
    char **text; /* token text by id (NULL for holes) */
    uint32_t *text_len;
    uint8_t *flags; /* by id: TOK_SPECIAL, TOK_ADDED */
    strmap vocab;   /* model vocabulary: text -> id */

    /* BPE model */
    pairmap merges;
    bool byte_fallback, fuse_unk, ignore_merges;
    int32_t unk_id;
    char *subword_prefix, *word_suffix; /* NULL when empty */
    int32_t byte_ids[256];              /* <0xXX> ids, -1 when absent */
    word_cache cache;

    /* pipeline */
    normalizer *norms;
    size_t n_norms;
    pretokenizer *pretoks;
    size_t n_pretoks;
    added_token *added;
    size_t n_added;
    strmap added_index;             /* content -> id */
    added_trie trie_raw, trie_norm; /* tokens matched before / after normalization */
    ivec post_prefix, post_suffix;  /* ids the post-processor puts around the sequence */
    decoder *decoders;
    size_t n_decoders;
    bool clean_up_spaces; /* tokenizer_config.json clean_up_tokenization_spaces */

    int32_t bos;
    ivec eos;
};
enum { TOK_SPECIAL = 1, TOK_ADDED = 2 };

struct bpe_symbol;
struct bpe_pending;
/* Per-encode scratch state (one per call, so encoding is thread-safe). */
typedef struct encode_state {
    const tokenizer *t;
    ivec *out;
    pcre2_match_data *md;
    tbuf *scratch; /* two per pre-tokenizer step */
    size_t n_scratch;
    tbuf word; /* bpe: a character with prefix/suffix */
    struct bpe_symbol *syms;
    size_t syms_cap;
    struct bpe_pending *heap;
    size_t heap_cap;
    ivec word_ids;
} encode_state;
void encode_state_init(encode_state *st, const tokenizer *t, ivec *out);
void encode_state_free(encode_state *st);

/* normalize.c */
bool tok_is_whitespace(int32_t c); /* Unicode White_Space, as Rust's char::is_whitespace */
int normalize_text(const tokenizer *t, const char *s, size_t n, tbuf *out);
/* pretok.c: splits, then calls bpe_encode_word on every piece */
int pretokenize_and_encode(encode_state *st, const char *s, size_t n, bool at_start);
void bytelevel_map(const char *s, size_t n, tbuf *out); /* bytes -> GPT-2 byte characters */
int bytelevel_unmap(int32_t cp);                        /* code point -> byte, -1 */
/* bpe.c */
int bpe_encode_word(encode_state *st, const char *s, size_t n);
/* Merges the symbols ids[0..*n) in place by merge rank (lowest rank, then leftmost, first). */
void bpe_merge(encode_state *st, const pairmap *merges, int32_t *ids, size_t *n);
void word_cache_init(word_cache *c);
void word_cache_free(word_cache *c);
/* tok_added.c */
void added_trie_build(added_trie *trie, const added_token *tokens, size_t n, bool normalized);
void added_trie_free(added_trie *trie);
/* Longest added token starting at s[0..n); returns its index or -1, *match_len set. */
int32_t added_trie_match(const added_trie *trie, const char *s, size_t n, size_t *match_len);
/* tok_json.c: the fast path for model.vocab and model.merges */
typedef struct tok_span {
    const char *p;
    size_t n;
} tok_span;
typedef struct tok_iter {
    const char *p, *end;
    bool started;
} tok_iter;
json_t *tokjson_load(const char *data, size_t len, tok_span *vocab, tok_span *merges);
int tokjson_next_vocab(tok_iter *it, tbuf *key, long long *id);
int tokjson_next_merge(tok_iter *it, tbuf *a, tbuf *b); /* -2: a merge of the wrong shape */
/* tok_load.c / tok_llama2c.c */
tokenizer *tokenizer_load_json_dir(const char *dir);
tokenizer *tokenizer_load_llama2c(const char *path);
int llama2c_encode(const tokenizer *t, const char *text, size_t len, ivec *out);
char *llama2c_decode(const tokenizer *t, const int32_t *ids, size_t n, bool skip_special);
/* Shared by the loaders. */
tokenizer *tokenizer_alloc(void);
void tokenizer_set_vocab_size(tokenizer *t, int32_t n);

#endif
