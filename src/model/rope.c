/*
 * rope.c — rotary embedding frequencies, with the scalings Llama models use ("linear": all
 * frequencies divided by the factor; "llama3": low frequencies divided, high ones kept, a
 * smooth blend between), as transformers computes them.
 */
#include "model/model.h"

#include <math.h>

float *rope_inv_freq(const model_config *c) {
    int half = c->head_dim / 2;
    float *f = xmalloc((size_t)half * sizeof(float));
    for (int i = 0; i < half; i++) {
        float exponent = (float)(2 * i) / (float)c->head_dim;
        f[i] = 1.0f / powf(c->rope_theta, exponent);
    }
    const float factor = c->rope_scaling.factor;
    if (c->rope_scaling.type == ROPE_SCALING_LINEAR) {
        for (int i = 0; i < half; i++) f[i] /= factor;
    } else if (c->rope_scaling.type == ROPE_SCALING_LLAMA3) {
        float old_len = (float)c->rope_scaling.original_max_position;
        float lo = c->rope_scaling.low_freq_factor, hi = c->rope_scaling.high_freq_factor;
        float low_wavelen = old_len / lo, high_wavelen = old_len / hi;
        for (int i = 0; i < half; i++) {
            float wavelen = 2.0f * (float)M_PI / f[i];
            if (wavelen > low_wavelen) {
                f[i] /= factor;
            } else if (wavelen >= high_wavelen) {
                float smooth = (old_len / wavelen - lo) / (hi - lo);
                f[i] = (1 - smooth) * f[i] / factor + smooth * f[i];
            }
        }
    }
    return f;
}
