/*
 * llama.c — Llama 2/3: the shared block as it is (optional attention and MLP biases, rope
 * scaling "linear" and "llama3", tied embeddings are all read by config_parse_common).
 */
#include "model/model.h"

static int configure(const json_t *config, model_config *c) {
    (void)config;
    (void)c;
    return 0;
}

const arch arch_llama = {.model_type = "llama", .configure = configure};
