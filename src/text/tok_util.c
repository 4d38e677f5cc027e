/*
 * tok_util.c — the small tools the tokenizer is built from: growable buffers, a string hash
 * map (vocabulary, word cache), a pair map (BPE merge ranks), UTF-8 checks and PCRE2 helpers.
 */
#include "text/tok_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void tbuf_reserve(tbuf *b, size_t extra) {
    if (b->n + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra + 1) cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}

void tbuf_put(tbuf *b, const void *s, size_t n) {
    tbuf_reserve(b, n);
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void tbuf_putc(tbuf *b, char c) {
    tbuf_reserve(b, 1);
    b->p[b->n++] = c;
    b->p[b->n] = 0;
}

void tbuf_free(tbuf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

void ivec_push(ivec *v, int32_t x) {
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 16;
        v->p = xrealloc(v->p, v->cap * sizeof *v->p);
    }
    v->p[v->n++] = x;
}

void ivec_append(ivec *v, const int32_t *x, size_t n) {
    if (v->n + n > v->cap) {
        while (v->n + n > v->cap) v->cap = v->cap ? v->cap * 2 : 16;
        v->p = xrealloc(v->p, v->cap * sizeof *v->p);
    }
    if (n) memcpy(v->p + v->n, x, n * sizeof *x);
    v->n += n;
}

/* A fast 64-bit hash over 8-byte words (multiply-xorshift); quality is ample for tables. */
uint64_t tok_hash(const void *data, size_t n) {
    const unsigned char *p = data;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xC2B2AE3D27D4EB4Full;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0x165667B19E3779F9ull;
    h ^= h >> 32;
    h *= 0xD6E8FEB86659FD93ull;
    h ^= h >> 32;
    return h;
}

/* Big tables are looked up at random: transparent huge pages spare most TLB misses. */
static void *table_alloc(size_t bytes) {
    void *p = NULL;
    if (bytes >= (2u << 20)) {
        if (posix_memalign(&p, 2u << 20, bytes) != 0) p = NULL;
        if (p) madvise(p, bytes, MADV_HUGEPAGE);
    }
    if (!p) p = xmalloc(bytes);
    memset(p, 0, bytes);
    return p;
}

static size_t table_size(size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2) cap *= 2;
    return cap;
}

void strmap_init(strmap *m, size_t expected) {
    m->cap = table_size(expected);
    m->count = 0;
    m->slots = table_alloc(m->cap * sizeof *m->slots);
}

void strmap_free(strmap *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static void strmap_grow(strmap *m) {
    strmap bigger;
    bigger.cap = m->cap * 2;
    bigger.count = m->count;
    bigger.slots = table_alloc(bigger.cap * sizeof *bigger.slots);
    for (size_t i = 0; i < m->cap; i++) {
        strmap_slot *s = &m->slots[i];
        if (!s->key) continue;
        size_t j = tok_hash(s->key, s->len) & (bigger.cap - 1);
        while (bigger.slots[j].key) j = (j + 1) & (bigger.cap - 1);
        bigger.slots[j] = *s;
    }
    free(m->slots);
    *m = bigger;
}

static inline uint64_t key_prefix(const char *key, size_t len) {
    uint64_t w = 0;
    memcpy(&w, key, len < 8 ? len : 8);
    return w;
}

static inline bool slot_is(const strmap_slot *s, uint32_t h, uint64_t prefix, const char *key,
                           size_t len) {
    return s->hash == h && s->len == len && s->prefix == prefix &&
           (len <= 8 || !memcmp(s->key + 8, key + 8, len - 8));
}

void strmap_put(strmap *m, const char *key, size_t len, int32_t val) {
    if (!m->slots) strmap_init(m, 16);
    if ((m->count + 1) * 4 > m->cap * 3) strmap_grow(m);
    uint64_t h = tok_hash(key, len), prefix = key_prefix(key, len);
    size_t j = h & (m->cap - 1);
    for (;; j = (j + 1) & (m->cap - 1)) {
        strmap_slot *s = &m->slots[j];
        if (!s->key) {
            *s = (strmap_slot){key, (uint32_t)len, val, (uint32_t)(h >> 32), 0, prefix};
            m->count++;
            return;
        }
        if (slot_is(s, (uint32_t)(h >> 32), prefix, key, len)) {
            s->val = val;
            return;
        }
    }
}

void strmap_prefetch(const strmap *m, uint64_t hash) {
    if (m->slots) __builtin_prefetch(&m->slots[hash & (m->cap - 1)]);
}

int32_t strmap_get(const strmap *m, const char *key, size_t len) {
    return strmap_get_hashed(m, key, len, tok_hash(key, len));
}

int32_t strmap_get_hashed(const strmap *m, const char *key, size_t len, uint64_t h) {
    if (!m->slots) return -1;
    uint64_t prefix = key_prefix(key, len);
    for (size_t j = h & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        const strmap_slot *s = &m->slots[j];
        if (!s->key) return -1;
        if (slot_is(s, (uint32_t)(h >> 32), prefix, key, len)) return s->val;
    }
}

static inline uint64_t pair_key(int32_t a, int32_t b) {
    return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
}

static inline size_t pair_hash(uint64_t k) { /* murmur3's finalizer: every bit counts */
    k ^= k >> 33;
    k *= 0xFF51AFD7ED558CCDull;
    k ^= k >> 33;
    k *= 0xC4CEB9FE1A85EC53ull;
    k ^= k >> 33;
    return (size_t)k;
}

void pairmap_init(pairmap *m, size_t expected) {
    m->cap = table_size(expected);
    m->count = 0;
    m->slots = table_alloc(m->cap * sizeof *m->slots);
    for (size_t i = 0; i < m->cap; i++) m->slots[i].key = UINT64_MAX;
}

void pairmap_free(pairmap *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

void pairmap_put(pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t id) {
    if (!m->slots) pairmap_init(m, 16);
    if ((m->count + 1) * 2 > m->cap) {
        pairmap bigger;
        pairmap_init(&bigger, m->cap);
        for (size_t i = 0; i < m->cap; i++) {
            pair_slot *s = &m->slots[i];
            if (s->key == UINT64_MAX) continue;
            size_t j = pair_hash(s->key) & (bigger.cap - 1);
            while (bigger.slots[j].key != UINT64_MAX) j = (j + 1) & (bigger.cap - 1);
            bigger.slots[j] = *s;
        }
        bigger.count = m->count;
        free(m->slots);
        *m = bigger;
    }
    uint64_t k = pair_key(a, b);
    for (size_t j = pair_hash(k) & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        pair_slot *s = &m->slots[j];
        if (s->key == UINT64_MAX) {
            *s = (pair_slot){k, rank, id};
            m->count++;
            return;
        }
        if (s->key == k) { /* a repeated merge: the later one wins, as in Hugging Face */
            s->rank = rank;
            s->id = id;
            return;
        }
    }
}

void pairmap_prefetch(const pairmap *m, int32_t a, int32_t b) {
    if (m->slots) __builtin_prefetch(&m->slots[pair_hash(pair_key(a, b)) & (m->cap - 1)], 1);
}

const pair_slot *pairmap_get(const pairmap *m, int32_t a, int32_t b) {
    if (!m->slots) return NULL;
    uint64_t k = pair_key(a, b);
    for (size_t j = pair_hash(k) & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        const pair_slot *s = &m->slots[j];
        if (s->key == k) return s;
        if (s->key == UINT64_MAX) return NULL;
    }
}

size_t utf8_check(const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int n;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 2;
            cp = c & 0x1F;
            min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 3;
            cp = c & 0x0F;
            min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return i;
        }
        if (i + n > len) return i;
        for (int k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += n;
    }
    return len;
}

int32_t utf8_decode(const char *str, int *n) {
    const unsigned char *s = (const unsigned char *)str;
    if (s[0] < 0x80) {
        *n = 1;
        return s[0];
    }
    if (s[0] < 0xE0) {
        *n = 2;
        return ((s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    }
    if (s[0] < 0xF0) {
        *n = 3;
        return ((s[0] & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    }
    *n = 4;
    return ((s[0] & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F);
}

int utf8_encode(int32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = 0xC0 | (cp >> 6);
        o[1] = 0x80 | (cp & 0x3F);
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = 0xE0 | (cp >> 12);
        o[1] = 0x80 | ((cp >> 6) & 0x3F);
        o[2] = 0x80 | (cp & 0x3F);
        return 3;
    }
    o[0] = 0xF0 | (cp >> 18);
    o[1] = 0x80 | ((cp >> 12) & 0x3F);
    o[2] = 0x80 | ((cp >> 6) & 0x3F);
    o[3] = 0x80 | (cp & 0x3F);
    return 4;
}

pcre2_code *tok_regex_compile(const char *pattern, size_t len, bool literal, const char *what) {
    int err;
    PCRE2_SIZE off;
    uint32_t opts = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, opts, &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        kiln_error("%s: bad regular expression at offset %zu: %s", what, (size_t)off, msg);
        return NULL;
    }
    /* JIT is an optimisation: if it is unavailable the interpreter still matches. */
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

int tok_regex_next(const pcre2_code *re, pcre2_match_data *md, const char *s, size_t len,
                   size_t start, size_t *ms, size_t *me) {
    int rc = pcre2_match(re, (PCRE2_SPTR)s, len, start, PCRE2_NO_UTF_CHECK, md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
        /* a pathological input outgrew the JIT's default stack: retry with a big one */
        pcre2_jit_stack *stack = pcre2_jit_stack_create(32 * 1024, 64 << 20, NULL);
        pcre2_match_context *ctx = pcre2_match_context_create(NULL);
        pcre2_jit_stack_assign(ctx, NULL, stack);
        rc = pcre2_match(re, (PCRE2_SPTR)s, len, start, PCRE2_NO_UTF_CHECK, md, ctx);
        pcre2_match_context_free(ctx);
        pcre2_jit_stack_free(stack);
    }
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc < 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        kiln_error("regular expression failed at byte %zu: %s", start, msg);
        return -1;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    *ms = ov[0];
    *me = ov[1];
    return 1;
}
