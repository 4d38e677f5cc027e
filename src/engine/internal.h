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

#endif
