/*
 * sampler.c — turns logits into the next token: penalties (repetition as in transformers,
 * presence/frequency as in OpenAI's API), then greedy at temperature 0, or temperature,
 * top-k, top-p and min-p filtering and a draw from a seeded generator.
 */
#include "engine/engine.h"

#include <math.h>
#include <stdlib.h>

struct sampler {
    sampler_params p;
    int vocab;
    uint64_t rng;
    int *counts;      /* occurrences of each token so far, for the penalties */
    float *probs;     /* scratch: candidate probabilities */
    int32_t *indices; /* scratch: candidate ids */
};

void sampler_params_default(sampler_params *p) {
    *p = (sampler_params){.temperature = 1.0f, .top_p = 1.0f, .repetition_penalty = 1.0f};
}

sampler *sampler_new(const sampler_params *p, int vocab_size) {
    sampler *s = xcalloc(1, sizeof *s);
    s->p = *p;
    s->vocab = vocab_size;
    s->rng = p->seed ^ 0x9E3779B97F4A7C15ull;
    s->counts = xcalloc((size_t)vocab_size, sizeof(int));
    s->probs = xmalloc((size_t)vocab_size * sizeof(float));
    s->indices = xmalloc((size_t)vocab_size * sizeof(int32_t));
    return s;
}

void sampler_free(sampler *s) {
    if (!s) return;
    free(s->counts);
    free(s->probs);
    free(s->indices);
    free(s);
}

void sampler_accept(sampler *s, int32_t token) {
    if (token >= 0 && token < s->vocab) s->counts[token]++;
}

/* splitmix64: small, fast, and the same sequence on every platform for a given seed. */
static float next_uniform(sampler *s) {
    uint64_t z = (s->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) / (float)(1ull << 24);
}

static void apply_penalties(const sampler *s, float *logits) {
    const sampler_params *p = &s->p;
    if (p->repetition_penalty == 1.0f && p->presence_penalty == 0 && p->frequency_penalty == 0)
        return;
    for (int i = 0; i < s->vocab; i++) {
        if (!s->counts[i]) continue;
        if (p->repetition_penalty != 1.0f)
            logits[i] = logits[i] > 0 ? logits[i] / p->repetition_penalty
                                      : logits[i] * p->repetition_penalty;
        logits[i] -= p->presence_penalty + p->frequency_penalty * (float)s->counts[i];
    }
}

/* The first index of the largest value (NaNs never win). The maximum is found 8 lanes wide
 * first, a loop the compiler turns into vector max instructions, then its first position: one
 * compare chain over the vocabulary took 3-4% of a 16-stream server step (smollm-135m). */
static int argmax(const float *x, int n) {
    float lane[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY,
                     -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) lane[j] = x[i + j] > lane[j] ? x[i + j] : lane[j];
    float best = -INFINITY;
    for (int j = 0; j < 8; j++) best = lane[j] > best ? lane[j] : best;
    for (; i < n; i++) best = x[i] > best ? x[i] : best;
    for (i = 0; i < n; i++)
        if (x[i] == best) return i;
    return 0; /* all NaN */
}

static float log_softmax_at(const float *logits, int n, int token) {
    float max = logits[argmax(logits, n)];
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp((double)(logits[i] - max));
    /* sum >= 1: the maximum contributes exp(0) */
    // cppcheck-suppress invalidFunctionArg
    return (float)((double)(logits[token] - max) - log(sum));
}

static int by_prob_desc(const void *a, const void *b, void *probs) {
    const float *pr = probs;
    float pa = pr[*(const int32_t *)a], pb = pr[*(const int32_t *)b];
    return pa < pb ? 1 : pa > pb ? -1 : 0;
}

static int32_t sample_filtered(sampler *s, const float *logits) {
    const sampler_params *p = &s->p;
    const int n = s->vocab;
    float max = logits[argmax(logits, n)];
    double sum = 0;
    for (int i = 0; i < n; i++) sum += s->probs[i] = expf((logits[i] - max) / p->temperature);
    int count = 0;
    float pmax = 0;
    for (int i = 0; i < n; i++) {
        s->probs[i] = (float)(s->probs[i] / sum);
        if (s->probs[i] > pmax) pmax = s->probs[i];
    }
    for (int i = 0; i < n; i++) /* min_p drops what is far less likely than the best */
        if (s->probs[i] >= p->min_p * pmax && s->probs[i] > 0) s->indices[count++] = i;
    if (count == 0) return argmax(logits, n);
    if ((p->top_k > 0 && p->top_k < count) || p->top_p < 1.0f) { /* only these need order */
        qsort_r(s->indices, (size_t)count, sizeof(int32_t), by_prob_desc, s->probs);
        if (p->top_k > 0 && p->top_k < count) count = p->top_k;
        if (p->top_p < 1.0f) {
            double total = 0, cum = 0;
            for (int i = 0; i < count; i++) total += s->probs[s->indices[i]];
            for (int i = 0; i < count; i++) {
                cum += s->probs[s->indices[i]];
                if (cum >= p->top_p * total) {
                    count = i + 1;
                    break;
                }
            }
        }
    }
    double total = 0;
    for (int i = 0; i < count; i++) total += s->probs[s->indices[i]];
    double r = next_uniform(s) * total, cum = 0;
    for (int i = 0; i < count; i++) {
        cum += s->probs[s->indices[i]];
        if (r < cum) return s->indices[i];
    }
    return s->indices[count - 1];
}

int32_t sampler_sample(sampler *s, float *logits, float *logprob) {
    apply_penalties(s, logits);
    int32_t token = s->p.temperature <= 0 ? argmax(logits, s->vocab) : sample_filtered(s, logits);
    if (logprob) *logprob = log_softmax_at(logits, s->vocab, token);
    return token;
}
