/*
 * internal.h — private to the model layer: helpers shared by the loaders.
 */
#ifndef KILN_MODEL_INTERNAL_H
#define KILN_MODEL_INTERNAL_H

#include "model/model.h"

float *rope_inv_freq(const model_config *c);
model *model_load_hf(const char *dir);
model *model_load_llama2c(const char *path);
/* Keeps p to be freed with the model; returns p. */
void *model_own(model *m, void *p);

#endif
