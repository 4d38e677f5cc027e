/*
 * generate.c — one sequence from prompt to stop: the prompt in batches as large as the forward
 * state allows, then one token per step. Used by `kiln run` and the benchmarks; the server's
 * scheduler interleaves many sequences instead.
 */
#include "engine/engine.h"

#include <stdlib.h>

int prefill(forward_state *fs, kv_cache *kv, int seq, const int32_t *tokens, int n, float *logits) {
    int start = kv_seq_length(kv, seq);
    if (kv_seq_reserve(kv, seq, start + n) < 0) return -1;
    int max = forward_max_batch(fs);
    batch_entry *batch = xmalloc((size_t)max * sizeof *batch);
    int rc = 0;
    for (int done = 0; done < n && rc >= 0; done += max) {
        int chunk = n - done < max ? n - done : max;
        for (int i = 0; i < chunk; i++)
            batch[i] = (batch_entry){.token = tokens[done + i],
                                     .pos = start + done + i,
                                     .seq = seq,
                                     .logits = done + i == n - 1};
        rc = forward(fs, kv, batch, chunk, logits);
    }
    free(batch);
    return rc < 0 ? -1 : 0;
}

int generate(forward_state *fs, kv_cache *kv, int seq, sampler *s, const int32_t *prompt,
             int n_prompt, const generate_opts *o, token_fn on_token, void *ctx) {
    const int vocab = kv_cache_vocab(kv);
    float *logits = aligned_buffer((size_t)vocab * sizeof(float));
    if (!logits) return -1;
    int produced = 0, rc = prefill(fs, kv, seq, prompt, n_prompt, logits);
    for (int i = 0; i < n_prompt; i++) sampler_accept(s, prompt[i]);
    while (rc == 0 && produced < o->max_tokens) {
        int32_t token = sampler_sample(s, logits, NULL);
        bool stop = false;
        for (int i = 0; i < o->n_stop; i++) stop |= token == o->stop_ids[i];
        if (stop) break;
        sampler_accept(s, token);
        produced++;
        if (on_token && on_token(ctx, token) != 0) break;
        if (produced == o->max_tokens) break;
        int pos = kv_seq_length(kv, seq);
        if (kv_seq_reserve(kv, seq, pos + 1) < 0) {
            rc = -1;
            break;
        }
        batch_entry e = {.token = token, .pos = pos, .seq = seq, .logits = true};
        if (forward(fs, kv, &e, 1, logits) < 0) rc = -1;
    }
    aligned_free(logits);
    return rc < 0 ? -1 : produced;
}
