/*
 * qwen2.c — Qwen2 / Qwen2.5: biases on q, k and v (not on o_proj); sliding window only when
 * use_sliding_window is true.
 */
#include "model/model.h"

static int configure(const json_t *config, model_config *c) {
    bool use_window = false;
    if (json_get_bool(config, "use_sliding_window", &use_window) < 0) return -1;
    if (!use_window) c->sliding_window = 0;
    c->qkv_bias = true;
    c->o_bias = c->mlp_bias = false;
    return 0;
}

const arch arch_qwen2 = {.model_type = "qwen2", .configure = configure};
