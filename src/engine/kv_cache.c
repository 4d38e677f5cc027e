/*
 * kv_cache.c — the paged KV cache. Memory is one pool of fixed-size blocks; each sequence has a
 * table of block ids. Blocks are reference-counted so sequences that share a prompt prefix
 * share its blocks (the prompt cache keeps references to finished requests' blocks). A block
 * stores, for every layer and KV head, block_size positions of K and of V.
 *
 * Quantized KV (kv_cache_opts.bits 4 or 8): blocks come in two kinds with ids in one range.
 * Float blocks [0, n_float) hold positions before quantized_start (the start is rounded up to
 * a block boundary); quantized blocks [n_float, n_blocks) hold each position's head vector as
 * MLX affine groups (codes, then a float scale and bias per group), quantized once when the
 * position is written. A sequence's block j is float iff it begins before quantized_start, so
 * shared prefixes (same positions) always agree on the kind.
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
    float *k, *v;            /* float blocks */
    int *refcount;
    int *free_stack, n_free; /* float blocks */
    kv_seq *seqs;
    /* quantized KV */
    int bits, group_size, n_float, float_positions; /* positions [0, float_positions) float */
    size_t record_bytes, q_bytes_per_block;         /* per position and head; per block */
    uint8_t *kq, *vq;
    int *free_q, n_free_q;
};

static int check_quant_opts(const model *m, const kv_cache_opts *o) {
    if (o->bits == 0) return 0;
    if (o->bits != 4 && o->bits != 8) {
        kiln_error("KV cache bits %d: only 4 and 8 (or 0 for float) are supported", o->bits);
        return -1;
    }
    if (o->group_size != 32 && o->group_size != 64 && o->group_size != 128) {
        kiln_error("KV cache group size %d: must be 32, 64 or 128", o->group_size);
        return -1;
    }
    if (m->cfg.head_dim % o->group_size != 0) {
        kiln_error("KV cache group size %d does not divide the head size %d", o->group_size,
                   m->cfg.head_dim);
        return -1;
    }
    if (o->quantized_start < 0) {
        kiln_error("KV cache quantized_start %d is negative", o->quantized_start);
        return -1;
    }
    return 0;
}

kv_cache *kv_cache_create(const model *m, const kv_cache_opts *opts) {
    kv_cache_opts o = opts ? *opts : (kv_cache_opts){0};
    if (o.bits != 0 && o.group_size == 0) o.group_size = KV_GROUP_SIZE_DEFAULT;
    if (check_quant_opts(m, &o) < 0) return NULL;
    if (o.block_size <= 0) o.block_size = 16;
    if (o.max_tokens <= 0) o.max_tokens = m->cfg.max_seq_len < 4096 ? m->cfg.max_seq_len : 4096;
    if (o.max_seqs <= 0) o.max_seqs = 64;
    kv_cache *kv = xcalloc(1, sizeof *kv);
    kv->n_layers = m->cfg.n_layers;
    kv->vocab = m->cfg.vocab_size;
    kv->n_kv_heads = m->cfg.n_kv_heads;
    kv->head_dim = m->cfg.head_dim;
    kv->block_size = o.block_size;
    kv->max_seqs = o.max_seqs;
    int wanted = (int)((o.max_tokens + o.block_size - 1) / o.block_size);
    kv->floats_per_block = (size_t)kv->n_layers * kv->n_kv_heads * kv->block_size * kv->head_dim;
    kv->bits = o.bits;
    kv->group_size = o.group_size;
    if (o.bits) {
        /* The quantized pool holds max_tokens; float blocks for the positions before
         * quantized_start come on top, for every sequence slot (at most max_tokens). */
        int per_seq = (o.quantized_start + o.block_size - 1) / o.block_size;
        long long f = (long long)per_seq * o.max_seqs;
        kv->n_float = f < wanted ? (int)f : wanted;
        kv->float_positions = per_seq * o.block_size;
        kv->record_bytes = (size_t)kv->head_dim * (size_t)o.bits / 8 +
                           (size_t)(kv->head_dim / o.group_size) * 2 * sizeof(float);
        kv->q_bytes_per_block =
            (size_t)kv->n_layers * kv->n_kv_heads * kv->block_size * kv->record_bytes;
        kv->n_blocks = kv->n_float + wanted;
    } else {
        kv->n_float = kv->n_blocks = wanted;
    }
    size_t bytes = kv->floats_per_block * sizeof(float) * (size_t)kv->n_float;
    size_t q_bytes = kv->q_bytes_per_block * (size_t)(kv->n_blocks - kv->n_float);
    kv->k = bytes ? aligned_buffer(bytes) : NULL;
    kv->v = bytes ? aligned_buffer(bytes) : NULL;
    kv->kq = q_bytes ? aligned_buffer(q_bytes) : NULL;
    kv->vq = q_bytes ? aligned_buffer(q_bytes) : NULL;
    if ((bytes && (!kv->k || !kv->v)) || (q_bytes && (!kv->kq || !kv->vq))) {
        kiln_error("cannot allocate the KV cache (%zu MiB)", (2 * bytes + 2 * q_bytes) >> 20);
        kv_cache_free(kv);
        return NULL;
    }
    kv->refcount = xcalloc((size_t)kv->n_blocks, sizeof(int));
    kv->free_stack = xmalloc((size_t)(kv->n_float ? kv->n_float : 1) * sizeof(int));
    for (int i = 0; i < kv->n_float; i++) kv->free_stack[i] = kv->n_float - 1 - i;
    kv->n_free = kv->n_float;
    int n_q = kv->n_blocks - kv->n_float;
    kv->free_q = xmalloc((size_t)(n_q ? n_q : 1) * sizeof(int));
    for (int i = 0; i < n_q; i++) kv->free_q[i] = kv->n_blocks - 1 - i;
    kv->n_free_q = n_q;
    kv->seqs = xcalloc((size_t)kv->max_seqs, sizeof(kv_seq));
    return kv;
}

void kv_cache_free(kv_cache *kv) {
    if (!kv) return;
    aligned_free(kv->k);
    aligned_free(kv->v);
    aligned_free(kv->kq);
    aligned_free(kv->vq);
    free(kv->free_q);
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
    return kv->n_free + kv->n_free_q;
}

int kv_cache_total_blocks(const kv_cache *kv) {
    return kv->n_blocks;
}

size_t kv_cache_bytes_per_token(const kv_cache *kv) {
    if (kv->bits) return 2 * (size_t)kv->n_layers * kv->n_kv_heads * kv->record_bytes;
    return 2 * (size_t)kv->n_layers * kv->n_kv_heads * kv->head_dim * sizeof(float);
}

bool kv_block_quantized(const kv_cache *kv, int block) {
    return block >= kv->n_float;
}

static size_t record_offset(const kv_cache *kv, int block, int layer, int head, int slot) {
    return (size_t)(block - kv->n_float) * kv->q_bytes_per_block +
           (((size_t)layer * kv->n_kv_heads + (size_t)head) * kv->block_size + (size_t)slot) *
               kv->record_bytes;
}

uint8_t *kv_kq(const kv_cache *kv, int block, int layer, int head, int slot) {
    return kv->kq + record_offset(kv, block, layer, head, slot);
}

uint8_t *kv_vq(const kv_cache *kv, int block, int layer, int head, int slot) {
    return kv->vq + record_offset(kv, block, layer, head, slot);
}

int kv_quant_bits(const kv_cache *kv) {
    return kv->bits;
}

int kv_quant_group(const kv_cache *kv) {
    return kv->group_size;
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
    if (--kv->refcount[block] > 0) return;
    if (kv_block_quantized(kv, block))
        kv->free_q[kv->n_free_q++] = block;
    else
        kv->free_stack[kv->n_free++] = block;
}

/* A sequence's block j is float iff it begins before the quantized positions. */
static bool block_index_quantized(const kv_cache *kv, int j) {
    return kv->bits && (int64_t)j * kv->block_size >= kv->float_positions;
}

static int take_block(kv_cache *kv, bool quantized) {
    int b;
    if (quantized) {
        if (kv->n_free_q == 0) return -1;
        b = kv->free_q[--kv->n_free_q];
    } else {
        if (kv->n_free == 0) return -1;
        b = kv->free_stack[--kv->n_free];
    }
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
    int need_f = 0, need_q = 0;
    for (int j = s->n_blocks; j < need; j++) block_index_quantized(kv, j) ? need_q++ : need_f++;
    if (need_f > kv->n_free || need_q > kv->n_free_q) {
        kiln_error("KV cache is full: %d more blocks of %d positions needed, %d free",
                   need - s->n_blocks, kv->block_size, kv_cache_free_blocks(kv));
        return -1;
    }
    while (s->n_blocks < need)
        push_block(s, take_block(kv, block_index_quantized(kv, s->n_blocks)));
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
        int old = s->blocks[keep - 1], fresh = take_block(kv, kv_block_quantized(kv, old));
        if (fresh < 0) { /* no room to copy: drop the partial block instead */
            kv_block_unref(kv, old);
            s->n_blocks--;
            s->length = (keep - 1) * kv->block_size;
            return;
        }
        if (kv_block_quantized(kv, old)) {
            memcpy(kv_kq(kv, fresh, 0, 0, 0), kv_kq(kv, old, 0, 0, 0), kv->q_bytes_per_block);
            memcpy(kv_vq(kv, fresh, 0, 0, 0), kv_vq(kv, old, 0, 0, 0), kv->q_bytes_per_block);
        } else {
            memcpy(kv->k + (size_t)fresh * kv->floats_per_block,
                   kv->k + (size_t)old * kv->floats_per_block,
                   kv->floats_per_block * sizeof(float));
            memcpy(kv->v + (size_t)fresh * kv->floats_per_block,
                   kv->v + (size_t)old * kv->floats_per_block,
                   kv->floats_per_block * sizeof(float));
        }
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

void kv_cache_prefault(kv_cache *kv) {
    size_t bytes = kv->floats_per_block * sizeof(float) * (size_t)kv->n_float;
    size_t q_bytes = kv->q_bytes_per_block * (size_t)(kv->n_blocks - kv->n_float);
    if (bytes) memset(kv->k, 0, bytes), memset(kv->v, 0, bytes);
    if (q_bytes) memset(kv->kq, 0, q_bytes), memset(kv->vq, 0, q_bytes);
}
