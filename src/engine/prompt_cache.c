/*
 * prompt_cache.c — keeps the KV blocks of finished sequences so a later request that starts
 * with the same tokens (multi-turn chat re-sends the whole history) skips their prefill.
 * An entry is one finished sequence's run of full blocks with a hash chain over them
 * (hash[i] covers tokens of blocks 0..i), so a lookup compares one 64-bit value per block and
 * confirms the tokens only for the match. Entries hold references on their blocks; eviction is
 * least-recently-used within an entry count and a byte budget. An entry that is a prefix of a
 * newer one is dropped when the newer one arrives (the newer holds the same blocks).
 */
#include "engine/internal.h"

#include <string.h>

typedef struct pc_entry {
    int32_t *tokens; /* n_blocks * block_size */
    uint64_t *chain; /* hash of blocks [0..i] */
    int *blocks;
    int n_blocks;
    uint64_t last_used;
} pc_entry;

struct prompt_cache {
    kv_cache *kv;
    int block_size, max_entries;
    size_t max_bytes, block_bytes;
    pc_entry *entries;
    int n;
    uint64_t clock;
};

prompt_cache *prompt_cache_new(kv_cache *kv, int max_entries, size_t max_bytes) {
    prompt_cache *pc = xcalloc(1, sizeof *pc);
    pc->kv = kv;
    pc->block_size = kv_cache_block_size(kv);
    pc->max_entries = max_entries;
    pc->max_bytes = max_bytes;
    pc->block_bytes = kv_cache_bytes_per_token(kv) * (size_t)pc->block_size;
    pc->entries = xcalloc((size_t)(max_entries > 0 ? max_entries + 1 : 1), sizeof(pc_entry));
    return pc;
}

static void drop_entry(prompt_cache *pc, int i) {
    pc_entry *e = &pc->entries[i];
    for (int b = 0; b < e->n_blocks; b++) kv_block_unref(pc->kv, e->blocks[b]);
    free(e->tokens);
    free(e->chain);
    free(e->blocks);
    pc->entries[i] = pc->entries[--pc->n];
}

void prompt_cache_free(prompt_cache *pc) {
    if (!pc) return;
    while (pc->n) drop_entry(pc, pc->n - 1);
    free(pc->entries);
    free(pc);
}

/* FNV-1a over the block's token ids, seeded with the previous link of the chain. */
static uint64_t chain_hash(uint64_t prev, const int32_t *tokens, int n) {
    uint64_t h = prev ^ 0xcbf29ce484222325ull;
    const unsigned char *p = (const unsigned char *)tokens;
    for (size_t i = 0; i < (size_t)n * sizeof(int32_t); i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t *make_chain(const prompt_cache *pc, const int32_t *tokens, int n_blocks) {
    uint64_t *chain = xmalloc((size_t)(n_blocks ? n_blocks : 1) * sizeof *chain);
    uint64_t h = 0;
    for (int b = 0; b < n_blocks; b++)
        chain[b] = h = chain_hash(h, tokens + (size_t)b * pc->block_size, pc->block_size);
    return chain;
}

/* Whole blocks that entry e shares with the start of a sequence whose chain is given. */
static int shared_blocks(const prompt_cache *pc, const pc_entry *e, const uint64_t *chain,
                         const int32_t *tokens, int n_blocks) {
    int lo = 0, hi = n_blocks < e->n_blocks ? n_blocks : e->n_blocks;
    while (lo < hi && e->chain[lo] == chain[lo]) lo++;
    /* A chain link matches only if every earlier one does; confirm the tokens themselves. */
    while (lo > 0 && memcmp(e->tokens, tokens, (size_t)lo * pc->block_size * sizeof(int32_t))) lo--;
    return lo;
}

int prompt_cache_lookup(prompt_cache *pc, const int32_t *tokens, int n, int max_blocks,
                        const int **blocks) {
    int n_blocks = n / pc->block_size;
    if (n_blocks > max_blocks) n_blocks = max_blocks;
    if (pc->n == 0 || n_blocks <= 0) return 0;
    uint64_t *chain = make_chain(pc, tokens, n_blocks);
    int best = 0, best_i = -1;
    for (int i = 0; i < pc->n; i++) {
        int s = shared_blocks(pc, &pc->entries[i], chain, tokens, n_blocks);
        if (s > best) best = s, best_i = i;
    }
    free(chain);
    if (best_i < 0) return 0;
    pc->entries[best_i].last_used = ++pc->clock;
    *blocks = pc->entries[best_i].blocks;
    return best;
}

static size_t total_bytes(const prompt_cache *pc) {
    size_t blocks = 0;
    for (int i = 0; i < pc->n; i++) blocks += (size_t)pc->entries[i].n_blocks;
    return blocks * pc->block_bytes;
}

bool prompt_cache_evict_one(prompt_cache *pc) {
    if (pc->n == 0) return false;
    int lru = 0;
    for (int i = 1; i < pc->n; i++)
        if (pc->entries[i].last_used < pc->entries[lru].last_used) lru = i;
    drop_entry(pc, lru);
    return true;
}

void prompt_cache_insert(prompt_cache *pc, const int32_t *tokens, const int *blocks, int n_blocks) {
    if (pc->max_entries <= 0 || n_blocks <= 0) return;
    if (pc->max_bytes && (size_t)n_blocks * pc->block_bytes > pc->max_bytes) return;
    uint64_t *chain = make_chain(pc, tokens, n_blocks);
    for (int i = pc->n - 1; i >= 0; i--) {
        pc_entry *e = &pc->entries[i];
        int s = shared_blocks(pc, e, chain, tokens, n_blocks);
        if (s == n_blocks && e->n_blocks >= n_blocks) { /* already held by a longer entry */
            e->last_used = ++pc->clock;
            free(chain);
            return;
        }
        if (s == e->n_blocks) drop_entry(pc, i); /* the new entry extends this one */
    }
    pc_entry *e = &pc->entries[pc->n++];
    size_t tok_bytes = (size_t)n_blocks * pc->block_size * sizeof(int32_t);
    e->tokens = xmalloc(tok_bytes);
    memcpy(e->tokens, tokens, tok_bytes);
    e->chain = chain;
    e->blocks = xmalloc((size_t)n_blocks * sizeof(int));
    memcpy(e->blocks, blocks, (size_t)n_blocks * sizeof(int));
    for (int b = 0; b < n_blocks; b++) kv_block_ref(pc->kv, blocks[b]);
    e->n_blocks = n_blocks;
    e->last_used = ++pc->clock;
    while (pc->n > pc->max_entries || (pc->max_bytes && total_bytes(pc) > pc->max_bytes))
        prompt_cache_evict_one(pc);
}

int prompt_cache_entries(const prompt_cache *pc) {
    return pc->n;
}

size_t prompt_cache_bytes(const prompt_cache *pc) {
    return total_bytes(pc);
}
