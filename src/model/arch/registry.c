/*
 * registry.c — maps config.json's model_type to its architecture file.
 */
#include "model/model.h"

#include <string.h>

extern const arch arch_llama, arch_mistral, arch_qwen2, arch_qwen3;

static const arch *const archs[] = {&arch_llama, &arch_mistral, &arch_qwen2, &arch_qwen3};

const arch *arch_find(const char *model_type) {
    for (size_t i = 0; i < ARRAY_LEN(archs); i++)
        if (!strcmp(archs[i]->model_type, model_type)) return archs[i];
    char list[256] = "";
    for (size_t i = 0; i < ARRAY_LEN(archs); i++) {
        if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
        strncat(list, archs[i]->model_type, sizeof list - strlen(list) - 1);
    }
    kiln_error("model type \"%s\" is not supported (supported: %s)", model_type, list);
    return NULL;
}
