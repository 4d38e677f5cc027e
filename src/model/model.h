/*
 * model.h — the face of the model layer: model files (safetensors single or sharded, llama2.c
 * checkpoints), config.json, MLX quantization, and the architecture registry. A loaded model
 * is its config plus weights: quantized ones point into the mmapped files, dense matmul weights
 * are copied once into panel order (compute.h) and their file pages given back, small vectors
 * such as norms are converted to f32 copies. It knows nothing of requests or HTTP.
 */
#ifndef KILN_MODEL_H
#define KILN_MODEL_H

#include "compute/compute.h"

/* ---- safetensors ---- */
typedef struct tensor_info {
    const char *name;
    enum dtype dtype;
    int ndim;
    int64_t shape[4];
    const void *data;
    size_t nbytes;
    const char *file; /* the file it lives in, for error messages */
} tensor_info;

typedef struct tensor_store tensor_store;
/* Opens DIR/model.safetensors, or every shard named in DIR/model.safetensors.index.json, or a
 * single .safetensors file path. Validates headers fully (lengths, dtypes, shapes, offsets in
 * bounds and not overlapping). NULL + error naming the file and tensor. */
tensor_store *tensor_store_open(const char *path);
void tensor_store_free(tensor_store *s);
const tensor_info *tensor_store_find(const tensor_store *s, const char *name);
size_t tensor_store_count(const tensor_store *s);
const tensor_info *tensor_store_at(const tensor_store *s, size_t i);
/* The "__metadata__" object of the first file (may be NULL). */
const json_t *tensor_store_metadata(const tensor_store *s);

/* ---- configuration ---- */
enum rope_scaling_type { ROPE_SCALING_NONE, ROPE_SCALING_LINEAR, ROPE_SCALING_LLAMA3 };

typedef struct model_config {
    char model_type[32];
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_dim, vocab_size, max_seq_len;
    float norm_eps, rope_theta;
    struct {
        enum rope_scaling_type type;
        float factor, low_freq_factor, high_freq_factor;
        int original_max_position;
    } rope_scaling;
    int sliding_window; /* 0: attend to the whole context */
    bool tie_embeddings;
    bool qkv_bias, o_bias, mlp_bias; /* linear biases */
    bool qk_norm;                    /* per-head RMSNorm of q and k (Qwen3) */
    bool rope_interleaved;           /* llama2.c's rotary pairs */
    int bos_id;                      /* -1 when unknown */
    /* Default MLX quantization (bits 0 = float weights). */
    int quant_bits, quant_group_size;
} model_config;

/* ---- architectures: config.json's model_type -> what differs from the shared block ---- */
typedef struct arch {
    const char *model_type;
    /* Sets arch-specific fields after the shared keys are parsed; -1 + error on bad values. */
    int (*configure)(const json_t *config, model_config *c);
} arch;
const arch *arch_find(const char *model_type); /* NULL + error listing the supported types */
/* Parses the keys shared by the Llama family (hidden_size, num_attention_heads, rope, ...). */
int config_parse_common(const json_t *config, model_config *c);

/* ---- loaded models ---- */
typedef struct layer_weights {
    weight wq, wk, wv, wo, w_gate, w_up, w_down;
    float *attn_norm, *ffn_norm;
    float *q_norm, *k_norm;        /* [head_dim], NULL unless qk_norm */
    float *bq, *bk, *bv, *bo;      /* NULL when absent */
    float *b_gate, *b_up, *b_down; /* NULL when absent */
} layer_weights;

typedef struct model {
    model_config cfg;
    char *path;
    weight embed, lm_head;
    float *final_norm;
    layer_weights *layers;
    float *inv_freq; /* [head_dim / 2], rope scaling applied */
    tensor_store *store;
    mapped_file bin; /* llama2.c checkpoints */
    void **owned;    /* f32 copies of small vectors, dense weights in panel order */
    size_t n_owned;
} model;

/* PATH: a model folder (config.json + safetensors) or a llama2.c .bin checkpoint. */
model *model_load(const char *path);
void model_free(model *m);
/* Bytes of weights one decode step reads (all layers + lm_head; one embedding row ignored). */
size_t model_weight_bytes(const model *m);
/* Reads the bytes model_weight_bytes counts, where and as the model holds them, once with
 * op_read (the plain read decode is measured against); returns their checksum. */
uint64_t model_read_weights(const model *m, thread_pool *pool);

#endif
