/*
 * bpe.c — the BPE model: one word (a pre-tokenizer piece) to token ids, as Hugging Face's
 * tokenizers crate does it: characters (with continuing_subword_prefix / end_of_word_suffix)
 * looked up in the vocabulary, byte fallback (<0xXX>) or the unknown token for the rest, then
 * merges applied lowest rank first through a binary heap over a linked list of symbols.
 * Results for short words are kept in a cache shared by all threads.
 */
#include "text/tok_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct bpe_symbol {
    int32_t id;
    int32_t prev, next;
    bool removed;
} bpe_symbol;

typedef struct bpe_pending {
    int32_t rank, pos, id;
} bpe_pending;

enum { CACHE_MAX_WORD = 256, CACHE_MAX_ENTRIES = 1 << 18 };

void word_cache_init(word_cache *c) {
    pthread_mutex_init(&c->lock, NULL);
    strmap_init(&c->index, 1024);
}

void word_cache_free(word_cache *c) {
    for (size_t i = 0; i < c->n; i++) free(c->entries[i]);
    free(c->entries);
    strmap_free(&c->index);
    pthread_mutex_destroy(&c->lock);
}

static bool cache_get(word_cache *c, const char *s, size_t n, ivec *out) {
    bool hit = false;
    pthread_mutex_lock(&c->lock);
    int32_t e = strmap_get(&c->index, s, n);
    if (e >= 0) {
        const int32_t *entry = c->entries[e];
        ivec_append(out, entry + 1, (size_t)entry[0]);
        hit = true;
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

static void cache_put(word_cache *c, const char *s, size_t n, const int32_t *ids, size_t n_ids) {
    pthread_mutex_lock(&c->lock);
    if (c->n < CACHE_MAX_ENTRIES && strmap_get(&c->index, s, n) < 0) {
        int32_t *entry = xmalloc((1 + n_ids) * sizeof(int32_t) + n);
        entry[0] = (int32_t)n_ids;
        memcpy(entry + 1, ids, n_ids * sizeof(int32_t));
        char *key = (char *)(entry + 1 + n_ids);
        memcpy(key, s, n);
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 1024;
            c->entries = xrealloc(c->entries, c->cap * sizeof *c->entries);
        }
        c->entries[c->n] = entry;
        strmap_put(&c->index, key, n, (int32_t)c->n);
        c->n++;
    }
    pthread_mutex_unlock(&c->lock);
}

static bool merge_before(const bpe_pending *a, const bpe_pending *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(encode_state *st, size_t *n, bpe_pending m) {
    if (*n == st->heap_cap) {
        st->heap_cap = st->heap_cap ? st->heap_cap * 2 : 64;
        st->heap = xrealloc(st->heap, st->heap_cap * sizeof *st->heap);
    }
    bpe_pending *h = st->heap;
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!merge_before(&m, &h[parent])) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = m;
}

static bpe_pending heap_pop(encode_state *st, size_t *n) {
    bpe_pending *h = st->heap;
    bpe_pending top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= *n) break;
        if (child + 1 < *n && merge_before(&h[child + 1], &h[child])) child++;
        if (!merge_before(&h[child], &last)) break;
        h[i] = h[child];
        i = child;
    }
    if (*n > 0) h[i] = last;
    return top;
}

static void push_pair(encode_state *st, const pairmap *merges, size_t *hn, int32_t pos) {
    const bpe_symbol *sym = st->syms;
    const pair_slot *m = pairmap_get(merges, sym[pos].id, sym[sym[pos].next].id);
    if (m) heap_push(st, hn, (bpe_pending){m->rank, pos, m->id});
}

void bpe_merge(encode_state *st, const pairmap *merges, int32_t *ids, size_t *n_ids) {
    size_t n = *n_ids;
    if (n < 2) return;
    if (n > st->syms_cap) {
        st->syms_cap = n * 2;
        st->syms = xrealloc(st->syms, st->syms_cap * sizeof *st->syms);
    }
    bpe_symbol *sym = st->syms;
    for (size_t i = 0; i < n; i++)
        sym[i] = (bpe_symbol){ids[i], (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1, false};
    size_t hn = 0;
    for (size_t i = 0; i + 1 < n; i++) push_pair(st, merges, &hn, (int32_t)i);
    while (hn > 0) {
        bpe_pending top = heap_pop(st, &hn);
        bpe_symbol *left = &sym[top.pos];
        if (left->removed || left->next < 0) continue;
        bpe_symbol *right = &sym[left->next];
        const pair_slot *m = pairmap_get(merges, left->id, right->id);
        if (!m || m->id != top.id) continue; /* stale: a neighbour changed since it was queued */
        left->id = top.id;
        right->removed = true;
        left->next = right->next;
        if (left->next >= 0) sym[left->next].prev = top.pos;
        if (left->prev >= 0) push_pair(st, merges, &hn, left->prev);
        if (left->next >= 0) push_pair(st, merges, &hn, top.pos);
    }
    size_t k = 0;
    for (int32_t i = 0; i >= 0; i = sym[i].next) ids[k++] = sym[i].id;
    *n_ids = k;
}

/* Looks up one character with the model's prefix/suffix. */
static int32_t char_id(encode_state *st, const char *c, size_t len, bool first, bool last) {
    const tokenizer *t = st->t;
    if ((first || !t->subword_prefix) && (!last || !t->word_suffix))
        return strmap_get(&t->vocab, c, len);
    tbuf *w = &st->word;
    w->n = 0;
    if (!first) tbuf_put(w, t->subword_prefix, strlen(t->subword_prefix));
    tbuf_put(w, c, len);
    if (last && t->word_suffix) tbuf_put(w, t->word_suffix, strlen(t->word_suffix));
    return strmap_get(&t->vocab, w->p, w->n);
}

/* The initial symbols of a word, exactly as tokenizers' BPE::merge_word builds them. */
static void word_symbols(encode_state *st, const char *s, size_t n, ivec *ids) {
    const tokenizer *t = st->t;
    int32_t unk = -1; /* a pending (possibly fused) unknown */
    for (size_t i = 0; i < n;) {
        size_t len = (size_t)utf8_len((unsigned char)s[i]);
        bool first = i == 0, last = i + len >= n;
        int32_t id = char_id(st, s + i, len, first, last);
        if (id >= 0) {
            if (unk >= 0) ivec_push(ids, unk);
            unk = -1;
            ivec_push(ids, id);
        } else {
            bool done = false;
            if (t->byte_fallback) {
                /* the looked-up text, prefix and suffix included, as bytes */
                const char *b = s + i;
                size_t bn = len;
                if ((!first && t->subword_prefix) || (last && t->word_suffix)) {
                    b = st->word.p;
                    bn = st->word.n;
                }
                done = true;
                for (size_t k = 0; k < bn; k++)
                    if (t->byte_ids[(unsigned char)b[k]] < 0) done = false;
                if (done)
                    for (size_t k = 0; k < bn; k++)
                        ivec_push(ids, t->byte_ids[(unsigned char)b[k]]);
            }
            if (!done && t->unk_id >= 0) {
                if (unk >= 0 && !t->fuse_unk) ivec_push(ids, unk);
                unk = t->unk_id;
            }
            /* no unknown token: the character is dropped, as Hugging Face does */
        }
        i += len;
    }
    if (unk >= 0) ivec_push(ids, unk);
}

int bpe_encode_word(encode_state *st, const char *s, size_t n) {
    const tokenizer *t = st->t;
    word_cache *cache = (word_cache *)&t->cache; /* internally locked */
    bool cacheable = n <= CACHE_MAX_WORD;
    if (cacheable && cache_get(cache, s, n, st->out)) return 0;
    if (t->ignore_merges) {
        int32_t id = strmap_get(&t->vocab, s, n);
        if (id >= 0) {
            ivec_push(st->out, id);
            return 0;
        }
    }
    ivec *ids = &st->word_ids;
    ids->n = 0;
    word_symbols(st, s, n, ids);
    bpe_merge(st, &t->merges, ids->p, &ids->n);
    ivec_append(st->out, ids->p, ids->n);
    if (cacheable) cache_put(cache, s, n, ids->p, ids->n);
    return 0;
}
