/*
 * kv_cache.c — the paged KV cache. Memory is one pool of fixed-size blocks; each sequence has a
 * table of block ids. Blocks are reference-counted so sequences that share a prompt prefix
 * share its blocks (the prompt cache keeps references to finished requests' blocks). A block
 * stores, for every layer and KV head, block_size positions of K and of V.
 */
#include "engine/internal.h"

#include <string.h>

typedef struct kv_seq {
    bool used;
    int length;
    int *blocks;
    int n_blocks, cap;
} kv_seq;

struct kv_cache {
    int n_layers, n_kv_heads, head_dim, block_size, n_blocks, max_seqs, vocab;
    size_t floats_per_block; /* per K (and per V) */
    float *k, *v;
    int *refcount;
    int *free_stack, n_free;
    kv_seq *seqs;
};

kv_cache *kv_cache_create(const model *m, const kv_cache_opts *opts) {
    kv_cache_opts o = opts ? *opts : (kv_cache_opts){0};
    if (o.bits != 0) {
        kiln_error("quantized KV cache (bits %d) is not available yet", o.bits);
        return NULL;
    }
    if (o.block_size <= 0) o.block_size = 16;
    if (o.max_tokens <= 0) o.max_tokens = m->cfg.max_seq_len < 4096 ? m->cfg.max_seq_len : 4096;
    if (o.max_seqs <= 0) o.max_seqs = 64;
    kv_cache *kv = xcalloc(1, sizeof *kv);
    kv->n_layers = m->cfg.n_layers;
    kv->vocab = m->cfg.vocab_size;
    kv->n_kv_heads = m->cfg.n_kv_heads;
    kv->head_dim = m->cfg.head_dim;
    kv->block_size = o.block_size;
    kv->n_blocks = (int)((o.max_tokens + o.block_size - 1) / o.block_size);
    kv->max_seqs = o.max_seqs;
    kv->floats_per_block = (size_t)kv->n_layers * kv->n_kv_heads * kv->block_size * kv->head_dim;
    size_t bytes = kv->floats_per_block * sizeof(float) * (size_t)kv->n_blocks;
    kv->k = aligned_buffer(bytes);
    kv->v = aligned_buffer(bytes);
    if (!kv->k || !kv->v) {
        kiln_error("cannot allocate the KV cache (%zu MiB)", 2 * bytes >> 20);
        kv_cache_free(kv);
        return NULL;
    }
    kv->refcount = xcalloc((size_t)kv->n_blocks, sizeof(int));
    kv->free_stack = xmalloc((size_t)kv->n_blocks * sizeof(int));
    for (int i = 0; i < kv->n_blocks; i++) kv->free_stack[i] = kv->n_blocks - 1 - i;
    kv->n_free = kv->n_blocks;
    kv->seqs = xcalloc((size_t)kv->max_seqs, sizeof(kv_seq));
    return kv;
}

void kv_cache_free(kv_cache *kv) {
    if (!kv) return;
    aligned_free(kv->k);
    aligned_free(kv->v);
    if (kv->seqs)
        for (int i = 0; i < kv->max_seqs; i++) free(kv->seqs[i].blocks);
    free(kv->seqs);
    free(kv->refcount);
    free(kv->free_stack);
    free(kv);
}

int kv_cache_vocab(const kv_cache *kv) {
    return kv->vocab;
}

int kv_cache_block_size(const kv_cache *kv) {
    return kv->block_size;
}

int kv_cache_free_blocks(const kv_cache *kv) {
    return kv->n_free;
}

int kv_cache_total_blocks(const kv_cache *kv) {
    return kv->n_blocks;
}

size_t kv_cache_bytes_per_token(const kv_cache *kv) {
    return 2 * (size_t)kv->n_layers * kv->n_kv_heads * kv->head_dim * sizeof(float);
}

static size_t block_offset(const kv_cache *kv, int block, int layer, int head) {
    return (size_t)block * kv->floats_per_block +
           ((size_t)layer * kv->n_kv_heads + (size_t)head) * kv->block_size * kv->head_dim;
}

float *kv_k(const kv_cache *kv, int block, int layer, int head) {
    return kv->k + block_offset(kv, block, layer, head);
}

float *kv_v(const kv_cache *kv, int block, int layer, int head) {
    return kv->v + block_offset(kv, block, layer, head);
}

bool kv_seq_valid(const kv_cache *kv, int seq) {
    return seq >= 0 && seq < kv->max_seqs && kv->seqs[seq].used;
}

int kv_seq_new(kv_cache *kv) {
    for (int i = 0; i < kv->max_seqs; i++)
        if (!kv->seqs[i].used) {
            kv->seqs[i].used = true;
            kv->seqs[i].length = 0;
            kv->seqs[i].n_blocks = 0;
            return i;
        }
    kiln_error("all %d sequence slots of the KV cache are in use", kv->max_seqs);
    return -1;
}

void kv_block_ref(kv_cache *kv, int block) {
    kv->refcount[block]++;
}

void kv_block_unref(kv_cache *kv, int block) {
    if (--kv->refcount[block] == 0) kv->free_stack[kv->n_free++] = block;
}

static int take_block(kv_cache *kv) {
    if (kv->n_free == 0) return -1;
    int b = kv->free_stack[--kv->n_free];
    kv->refcount[b] = 1;
    return b;
}

static void push_block(kv_seq *s, int block) {
    if (s->n_blocks == s->cap)
        s->blocks = xrealloc(s->blocks, (size_t)(s->cap = s->cap ? 2 * s->cap : 16) * sizeof(int));
    s->blocks[s->n_blocks++] = block;
}

void kv_seq_free(kv_cache *kv, int seq) {
    if (!kv_seq_valid(kv, seq)) return;
    kv_seq *s = &kv->seqs[seq];
    for (int i = 0; i < s->n_blocks; i++) kv_block_unref(kv, s->blocks[i]);
    s->n_blocks = 0;
    s->length = 0;
    s->used = false;
}

int kv_seq_length(const kv_cache *kv, int seq) {
    return kv_seq_valid(kv, seq) ? kv->seqs[seq].length : 0;
}

int kv_seq_reserve(kv_cache *kv, int seq, int n_positions) {
    kv_seq *s = &kv->seqs[seq];
    int need = (n_positions + kv->block_size - 1) / kv->block_size;
    if (need - s->n_blocks > kv->n_free) {
        kiln_error("KV cache is full: %d more blocks of %d positions needed, %d free",
                   need - s->n_blocks, kv->block_size, kv->n_free);
        return -1;
    }
    while (s->n_blocks < need) push_block(s, take_block(kv));
    return 0;
}

void kv_seq_truncate(kv_cache *kv, int seq, int n) {
    kv_seq *s = &kv->seqs[seq];
    if (n >= s->length) return;
    int keep = (n + kv->block_size - 1) / kv->block_size;
    while (s->n_blocks > keep) kv_block_unref(kv, s->blocks[--s->n_blocks]);
    s->length = n;
    /* The last kept block will be written again: it must be ours alone (copy on write). */
    if (n % kv->block_size != 0 && kv->refcount[s->blocks[keep - 1]] > 1) {
        int old = s->blocks[keep - 1], fresh = take_block(kv);
        if (fresh < 0) { /* no room to copy: drop the partial block instead */
            kv_block_unref(kv, old);
            s->n_blocks--;
            s->length = (keep - 1) * kv->block_size;
            return;
        }
        memcpy(kv->k + (size_t)fresh * kv->floats_per_block,
               kv->k + (size_t)old * kv->floats_per_block, kv->floats_per_block * sizeof(float));
        memcpy(kv->v + (size_t)fresh * kv->floats_per_block,
               kv->v + (size_t)old * kv->floats_per_block, kv->floats_per_block * sizeof(float));
        kv_block_unref(kv, old);
        s->blocks[keep - 1] = fresh;
    }
}

const int *kv_seq_blocks(const kv_cache *kv, int seq, int *n_blocks) {
    *n_blocks = kv->seqs[seq].n_blocks;
    return kv->seqs[seq].blocks;
}

int kv_seq_adopt(kv_cache *kv, int seq, const int *blocks, int n_blocks) {
    kv_seq *s = &kv->seqs[seq];
    if (s->n_blocks != 0) {
        kiln_error("kv_seq_adopt: sequence %d is not empty", seq);
        return -1;
    }
    for (int i = 0; i < n_blocks; i++) {
        kv_block_ref(kv, blocks[i]);
        push_block(s, blocks[i]);
    }
    s->length = n_blocks * kv->block_size;
    return 0;
}

int kv_block_of(const kv_cache *kv, int seq, int pos) {
    return kv->seqs[seq].blocks[pos / kv->block_size];
}

void kv_seq_written(kv_cache *kv, int seq, int pos) {
    if (pos + 1 > kv->seqs[seq].length) kv->seqs[seq].length = pos + 1;
}
