/*
 * config.c — config.json keys shared by the Llama family of architectures (hidden sizes,
 * heads, rope and its scaling, biases, quantization). Architecture files add what differs.
 * Both transformers 4's "rope_scaling"/"rope_theta" and 5's "rope_parameters" are read.
 */
#include "model/model.h"

#include <string.h>

/* Reads an integer key that must be positive; `required` decides if absence is an error. */
static int positive_int(const json_t *cfg, const char *key, int *out, bool required) {
    long long v;
    int rc = json_get_int(cfg, key, &v);
    if (rc < 0) return -1;
    if (rc > 0) {
        if (!required) return 0;
        kiln_error("config.json: \"%s\" is missing", key);
        return -1;
    }
    if (v <= 0 || v > (1 << 30)) {
        kiln_error("config.json: \"%s\" must be a positive integer (got %lld)", key, v);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_rope(const json_t *cfg, model_config *c) {
    double theta = 10000.0;
    const json_t *params = json_object_get(cfg, "rope_parameters");
    const json_t *scaling = json_object_get(cfg, "rope_scaling");
    if (json_get_double(cfg, "rope_theta", &theta) < 0) return -1;
    if (json_is_object(params) && json_get_double(params, "rope_theta", &theta) < 0) return -1;
    c->rope_theta = (float)theta;
    if (!json_is_object(scaling)) scaling = params;
    if (!json_is_object(scaling)) return 0;
    const char *type = NULL;
    if (json_get_string(scaling, "rope_type", &type) < 0) return -1;
    if (!type && json_get_string(scaling, "type", &type) < 0) return -1;
    if (!type || !strcmp(type, "default")) return 0;
    double factor = 1, low = 1, high = 4;
    long long orig = 8192;
    if (json_get_double(scaling, "factor", &factor) < 0) return -1;
    if (factor <= 0) {
        kiln_error("config.json: rope scaling \"factor\" must be positive");
        return -1;
    }
    c->rope_scaling.factor = (float)factor;
    if (!strcmp(type, "linear")) {
        c->rope_scaling.type = ROPE_SCALING_LINEAR;
        return 0;
    }
    if (!strcmp(type, "llama3")) {
        if (json_get_double(scaling, "low_freq_factor", &low) < 0 ||
            json_get_double(scaling, "high_freq_factor", &high) < 0 ||
            json_get_int(scaling, "original_max_position_embeddings", &orig) < 0)
            return -1;
        if (high <= low || orig <= 0) {
            kiln_error("config.json: llama3 rope scaling needs high_freq_factor > low_freq_factor "
                       "and original_max_position_embeddings > 0");
            return -1;
        }
        c->rope_scaling.type = ROPE_SCALING_LLAMA3;
        c->rope_scaling.low_freq_factor = (float)low;
        c->rope_scaling.high_freq_factor = (float)high;
        c->rope_scaling.original_max_position = (int)orig;
        return 0;
    }
    kiln_error("config.json: rope scaling type \"%s\" is not supported (supported: linear, llama3)",
               type);
    return -1;
}

static int parse_quantization(const json_t *cfg, model_config *c) {
    const json_t *q = json_object_get(cfg, "quantization");
    if (!q) q = json_object_get(cfg, "quantization_config");
    if (!q) return 0;
    if (!json_is_object(q)) {
        kiln_error("config.json: \"quantization\" must be an object");
        return -1;
    }
    const char *mode = "affine";
    long long bits = 0, group = 64;
    if (json_get_string(q, "mode", &mode) < 0 || json_get_int(q, "bits", &bits) < 0 ||
        json_get_int(q, "group_size", &group) < 0)
        return -1;
    if (strcmp(mode, "affine") != 0) {
        kiln_error("config.json: quantization mode \"%s\" is not supported (supported: affine)",
                   mode);
        return -1;
    }
    if (bits != 2 && bits != 3 && bits != 4 && bits != 5 && bits != 6 && bits != 8) {
        kiln_error("config.json: quantization bits %lld is not supported (2, 3, 4, 5, 6, 8)", bits);
        return -1;
    }
    if (group != 32 && group != 64 && group != 128) {
        kiln_error("config.json: quantization group_size %lld is not supported (32, 64, 128)",
                   group);
        return -1;
    }
    c->quant_bits = (int)bits;
    c->quant_group_size = (int)group;
    return 0;
}

int config_parse_common(const json_t *cfg, model_config *c) {
    c->n_kv_heads = 0;
    c->max_seq_len = 4096;
    c->norm_eps = 1e-5f;
    c->bos_id = -1;
    if (positive_int(cfg, "hidden_size", &c->dim, true) < 0 ||
        positive_int(cfg, "intermediate_size", &c->hidden_dim, true) < 0 ||
        positive_int(cfg, "num_hidden_layers", &c->n_layers, true) < 0 ||
        positive_int(cfg, "num_attention_heads", &c->n_heads, true) < 0 ||
        positive_int(cfg, "num_key_value_heads", &c->n_kv_heads, false) < 0 ||
        positive_int(cfg, "head_dim", &c->head_dim, false) < 0 ||
        positive_int(cfg, "vocab_size", &c->vocab_size, true) < 0 ||
        positive_int(cfg, "max_position_embeddings", &c->max_seq_len, false) < 0)
        return -1;
    if (!c->n_kv_heads) c->n_kv_heads = c->n_heads;
    if (!c->head_dim) c->head_dim = c->dim / c->n_heads;
    if (c->n_heads % c->n_kv_heads != 0) {
        kiln_error("config.json: num_attention_heads (%d) must be a multiple of "
                   "num_key_value_heads (%d)",
                   c->n_heads, c->n_kv_heads);
        return -1;
    }
    if (c->head_dim % 2 != 0) {
        kiln_error("config.json: head_dim (%d) must be even for rotary embeddings", c->head_dim);
        return -1;
    }
    double eps = c->norm_eps;
    long long bos = -1, window = 0;
    bool tie = false, use_window = true;
    if (json_get_double(cfg, "rms_norm_eps", &eps) < 0 ||
        json_get_bool(cfg, "tie_word_embeddings", &tie) < 0 ||
        json_get_bool(cfg, "attention_bias", &c->qkv_bias) < 0 ||
        json_get_bool(cfg, "mlp_bias", &c->mlp_bias) < 0 ||
        json_get_int(cfg, "sliding_window", &window) < 0 ||
        json_get_bool(cfg, "use_sliding_window", &use_window) < 0)
        return -1;
    if (json_is_integer(json_object_get(cfg, "bos_token_id")))
        bos = json_integer_value(json_object_get(cfg, "bos_token_id"));
    c->norm_eps = (float)eps;
    c->tie_embeddings = tie;
    c->o_bias = c->qkv_bias;
    c->bos_id = (int)bos;
    c->sliding_window = use_window && window > 0 ? (int)window : 0;
    if (parse_rope(cfg, c) < 0 || parse_quantization(cfg, c) < 0) return -1;
    return 0;
}
