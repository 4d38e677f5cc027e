/*
 * qwen3.c — Qwen3: RMSNorm on each head of q and k before rope, explicit head_dim, optional
 * attention bias (off in released models), no q/k/v bias by default.
 */
#include "model/model.h"

static int configure(const json_t *config, model_config *c) {
    bool use_window = false;
    if (json_get_bool(config, "use_sliding_window", &use_window) < 0) return -1;
    if (!use_window) c->sliding_window = 0;
    c->qk_norm = true;
    c->mlp_bias = false;
    return 0;
}

const arch arch_qwen3 = {.model_type = "qwen3", .configure = configure};
