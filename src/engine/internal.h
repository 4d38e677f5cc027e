/*
 * internal.h — private to the engine: how the forward pass reaches into the KV cache.
 */
#ifndef KILN_ENGINE_INTERNAL_H
#define KILN_ENGINE_INTERNAL_H

#include "engine/engine.h"

/* K and V of one layer and KV head in one block: [block_size][head_dim] floats each. */
float *kv_k(const kv_cache *kv, int block, int layer, int head);
float *kv_v(const kv_cache *kv, int block, int layer, int head);
/* Quantized KV: whether a block holds quantized records; the record of (block, layer, head,
 * slot): head_dim codes of kv_quant_bits bits (a little-endian bit stream), then per group of
 * kv_quant_group values a float scale and a float bias (MLX affine, quant_affine_group). */
bool kv_block_quantized(const kv_cache *kv, int block);
uint8_t *kv_kq(const kv_cache *kv, int block, int layer, int head, int slot);
uint8_t *kv_vq(const kv_cache *kv, int block, int layer, int head, int slot);
int kv_quant_bits(const kv_cache *kv);
int kv_quant_group(const kv_cache *kv);
/* Records (kv_quant.c): quantizes head vector x into rec; q·k and acc += w·v on a record. */
void kv_quant_store(uint8_t *rec, const float *x, int hd, int bits, int group);
float kv_quant_dot(const uint8_t *rec, const float *q, int hd, int bits, int group);
void kv_quant_axpy(float *acc, float w, const uint8_t *rec, int hd, int bits, int group);
/* The block holding position pos of seq (the position must be reserved). */
int kv_block_of(const kv_cache *kv, int seq, int pos);
/* Records that position pos of seq now holds K/V. */
void kv_seq_written(kv_cache *kv, int seq, int pos);
bool kv_seq_valid(const kv_cache *kv, int seq);
/* Touches all of the cache's memory once (the server commits it at startup). */
void kv_cache_prefault(kv_cache *kv);

/* ---- prompt cache (scheduler.c's): KV blocks of finished sequences, by token prefix ---- */
typedef struct prompt_cache prompt_cache;
/* max_entries finished prompts, their blocks at most max_bytes (0: no byte limit). */
prompt_cache *prompt_cache_new(kv_cache *kv, int max_entries, size_t max_bytes);
void prompt_cache_free(prompt_cache *pc); /* drops its block references */
/* The longest run of whole cached blocks that starts tokens[0..n), at most max_blocks; *blocks
 * points into the cache (valid until the next insert or evict). Returns the block count. */
int prompt_cache_lookup(prompt_cache *pc, const int32_t *tokens, int n, int max_blocks,
                        const int **blocks);
/* Keeps (references) n_blocks full blocks holding tokens[0 .. n_blocks * block_size). */
void prompt_cache_insert(prompt_cache *pc, const int32_t *tokens, const int *blocks, int n_blocks);
/* Drops the least recently used entry; false when empty. */
bool prompt_cache_evict_one(prompt_cache *pc);
int prompt_cache_entries(const prompt_cache *pc);
size_t prompt_cache_bytes(const prompt_cache *pc);

#endif
