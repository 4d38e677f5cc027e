/*
 * mistral.c — Mistral: the Llama block with no biases and an optional sliding attention
 * window (read by config_parse_common).
 */
#include "model/model.h"

static int configure(const json_t *config, model_config *c) {
    (void)config;
    c->qkv_bias = c->o_bias = c->mlp_bias = false;
    return 0;
}

const arch arch_mistral = {.model_type = "mistral", .configure = configure};
