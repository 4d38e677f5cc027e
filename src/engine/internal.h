/*
 * internal.h — private to the engine: how the forward pass reaches into the KV cache.
 */
#ifndef KILN_ENGINE_INTERNAL_H
#define KILN_ENGINE_INTERNAL_H

#include "engine/engine.h"

/* K and V of one layer and KV head in one block: [block_size][head_dim] floats each. */
float *kv_k(const kv_cache *kv, int block, int layer, int head);
float *kv_v(const kv_cache *kv, int block, int layer, int head);
/* The block holding position pos of seq (the position must be reserved). */
int kv_block_of(const kv_cache *kv, int seq, int pos);
/* Records that position pos of seq now holds K/V. */
void kv_seq_written(kv_cache *kv, int seq, int pos);
bool kv_seq_valid(const kv_cache *kv, int seq);

#endif
