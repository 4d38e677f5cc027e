/*
 * engine.h — the face of the engine: the paged KV cache, the batched forward pass, the
 * sampler and a simple generation loop. A batch is any set of (sequence, position, token)
 * entries: prefill chunks of several prompts and decode tokens of running sequences go through
 * one forward pass together (continuous batching is built on this by the scheduler).
 */
#ifndef KILN_ENGINE_H
#define KILN_ENGINE_H

#include "model/model.h"

/* ---- paged KV cache ---- */
typedef struct kv_cache kv_cache;

typedef struct kv_cache_opts {
    int block_size;     /* positions per block (default 16) */
    int64_t max_tokens; /* total positions over all sequences (default: model context) */
    int max_seqs;       /* sequence slots (default 64) */
    /* Quantized KV (issue 5): bits 0 (float), 4 or 8; group size (0: KV_GROUP_SIZE_DEFAULT);
     * first quantized position. */
    int bits, group_size, quantized_start;
} kv_cache_opts;
#define KV_GROUP_SIZE_DEFAULT 64

kv_cache *kv_cache_create(const model *m, const kv_cache_opts *opts); /* NULL + error */
void kv_cache_free(kv_cache *kv);
int kv_cache_block_size(const kv_cache *kv);
int kv_cache_free_blocks(const kv_cache *kv);
int kv_cache_total_blocks(const kv_cache *kv);
size_t kv_cache_bytes_per_token(const kv_cache *kv);
int kv_cache_vocab(const kv_cache *kv); /* the model's vocabulary size */

/* A new empty sequence slot, or -1 + error when all slots are taken. */
int kv_seq_new(kv_cache *kv);
/* Releases the slot and drops its references to blocks. */
void kv_seq_free(kv_cache *kv, int seq);
/* Positions stored so far (the next position to write). */
int kv_seq_length(const kv_cache *kv, int seq);
/* Makes room for positions [0, n_positions): allocates blocks; -1 + error if out of blocks. */
int kv_seq_reserve(kv_cache *kv, int seq, int n_positions);
/* Forgets positions >= n (for rejected drafts or trimming); keeps blocks < n shared. */
void kv_seq_truncate(kv_cache *kv, int seq, int n);
/* The block ids backing the sequence, in order. */
const int *kv_seq_blocks(const kv_cache *kv, int seq, int *n_blocks);
/* Prefix sharing: an empty sequence adopts full blocks (their references are taken) holding
 * positions [0, n_blocks * block_size). Writes never touch a shared block: only blocks past
 * the adopted prefix are written. */
int kv_seq_adopt(kv_cache *kv, int seq, const int *blocks, int n_blocks);
void kv_block_ref(kv_cache *kv, int block);
void kv_block_unref(kv_cache *kv, int block);

/* ---- forward pass ---- */
typedef struct batch_entry {
    int32_t token;
    int32_t pos; /* position in its sequence */
    int32_t seq; /* kv cache sequence slot */
    bool logits; /* write this entry's logits (a row of the logits output, in entry order) */
} batch_entry;

typedef struct forward_state forward_state;
/* Buffers for batches of up to max_batch entries, planned once: no allocation per token. */
forward_state *forward_state_create(const model *m, int max_batch, thread_pool *pool);
void forward_state_free(forward_state *fs);
int forward_max_batch(const forward_state *fs);
/* Runs the batch: K/V of every entry are written to the cache at (seq, pos) first, then each
 * entry attends to its sequence's positions [0, pos]. Positions must already be reserved. The
 * logits of entries with .logits set go to out in order ([count, vocab]); returns that count
 * or -1 + error. */
int forward(forward_state *fs, kv_cache *kv, const batch_entry *batch, int n, float *out);

/* ---- sampling ---- */
typedef struct sampler_params {
    float temperature;        /* 0: greedy */
    int top_k;                /* 0: off */
    float top_p;              /* 1: off */
    float min_p;              /* 0: off */
    float repetition_penalty; /* 1: off (applied to tokens in the history window) */
    float presence_penalty, frequency_penalty;
    uint64_t seed;
} sampler_params;
void sampler_params_default(sampler_params *p);

typedef struct sampler sampler;
sampler *sampler_new(const sampler_params *p, int vocab_size);
void sampler_free(sampler *s);
/* Records a generated or prompt token for the penalties. */
void sampler_accept(sampler *s, int32_t token);
/* Picks a token from logits (modified in place by the penalties). logprob (may be NULL) gets
 * log p(token) at temperature 1 after the penalties. */
int32_t sampler_sample(sampler *s, float *logits, float *logprob);

/* ---- one sequence at a time (kiln run, benchmarks) ---- */
/* Runs tokens through the model after the sequence's current length, in batches; the logits
 * of the last token go to logits[vocab]. */
int prefill(forward_state *fs, kv_cache *kv, int seq, const int32_t *tokens, int n, float *logits);

typedef struct generate_opts {
    int max_tokens;
    const int32_t *stop_ids; /* generation ends before any of these */
    int n_stop;
} generate_opts;
/* Called for each generated token; a non-zero return stops generation. */
typedef int (*token_fn)(void *ctx, int32_t token);
/* Prefills the prompt, then samples up to max_tokens tokens. Returns the number generated or
 * -1 + error. */
int generate(forward_state *fs, kv_cache *kv, int seq, sampler *s, const int32_t *prompt,
             int n_prompt, const generate_opts *o, token_fn on_token, void *ctx);

/* ---- scheduler: continuous batching (one engine thread owns the model) ---- */
/* Requests queue in; every step the engine thread runs ONE forward pass holding the next
 * token of every decoding sequence plus chunks of waiting prompts. Finished sequences leave
 * their full KV blocks in the prompt cache; a new request adopts the longest cached prefix of
 * whole blocks and prefills only the rest. Callbacks run on the engine thread: keep them short. */
typedef struct scheduler scheduler;

typedef struct scheduler_opts {
    int max_seqs;          /* sequences running at once (--parallel; default 16) */
    int max_batch;         /* entries per forward pass (default 256) */
    int max_queue;         /* waiting requests before submit refuses (default 256) */
    int ctx;               /* positions per sequence (default: the model's context, at most 8192) */
    int64_t kv_tokens;     /* KV positions over all sequences (default max_seqs * ctx, at most
                              max(ctx, 32768)) */
    int prompt_cache_size; /* finished prompts kept (0: no prompt cache; default 16) */
    size_t prompt_cache_bytes; /* their KV bytes at most (0: bounded by the KV pool only) */
    kv_cache_opts kv;          /* block_size, quantized KV (bits) */
} scheduler_opts;

enum finish_reason { FINISH_STOP, FINISH_LENGTH, FINISH_CANCELLED, FINISH_ERROR };

#define GEN_MAX_TOP_LOGPROBS 20

/* One generated token, as handed to on_token. */
typedef struct gen_token {
    int32_t id;
    float logprob; /* log p(id) at temperature 1 after penalties and logit_bias */
    int n_top;     /* the request's top_logprobs alternatives, most likely first */
    int32_t top_ids[GEN_MAX_TOP_LOGPROBS];
    float top_logprobs[GEN_MAX_TOP_LOGPROBS];
} gen_token;

typedef struct gen_result {
    enum finish_reason finish;
    int prompt_tokens, cached_tokens, generated;
    double queue_s, ttft_s, decode_s; /* waiting, submit -> first token, first -> last token */
    char error[256];                  /* FINISH_ERROR: what went wrong */
} gen_result;

typedef struct gen_request {
    const int32_t *prompt; /* copied by scheduler_submit */
    int n_prompt;
    int max_tokens;
    sampler_params sampling;
    const int32_t *bias_ids; /* logit_bias: added to those logits before sampling (copied) */
    const float *bias_values;
    int n_bias;
    const int32_t *stop_ids; /* end-of-generation tokens (not reported; copied) */
    int n_stop;
    bool logprobs;    /* compute gen_token.logprob (costs a softmax over the vocabulary) */
    int top_logprobs; /* 0..GEN_MAX_TOP_LOGPROBS alternatives per token */
    /* Set by the caller (any thread) to drop the sequence at the next step. */
    const _Atomic bool *cancel;
    /* A non-zero return ends the request with FINISH_STOP (a stop string matched). */
    int (*on_token)(void *ctx, const gen_token *t);
    /* Called exactly once at the end; the scheduler forgets ctx after it returns. */
    void (*on_done)(void *ctx, const gen_result *r);
    void *ctx;
} gen_request;

enum submit_status {
    SUBMIT_OK = 0,
    SUBMIT_INVALID = -1,
    SUBMIT_QUEUE_FULL = -2,
    SUBMIT_STOPPED = -3
};

/* Loads nothing: takes a loaded model and starts the engine thread. NULL + error. */
scheduler *scheduler_create(const model *m, thread_pool *pool, const scheduler_opts *o);
/* Cancels everything still queued or running (on_done with FINISH_CANCELLED), then stops. */
void scheduler_free(scheduler *s);
/* Queues a request; on failure on_done is NOT called and kiln_error says why. */
enum submit_status scheduler_submit(scheduler *s, const gen_request *r);
/* Refuses new submissions (SUBMIT_STOPPED) from now on; running requests go on. */
void scheduler_stop_accepting(scheduler *s);
/* Cancels every queued and running request at the next step. */
void scheduler_cancel_all(scheduler *s);
int scheduler_ctx(const scheduler *s); /* positions per sequence */

typedef struct scheduler_stats {
    int queued, running;
    int kv_blocks_used, kv_blocks_total, kv_block_size;
    int prompt_cache_entries;
    size_t prompt_cache_bytes;
    uint64_t prompt_cache_hits, prompt_cache_misses, prompt_cache_hit_tokens;
    uint64_t steps, batch_entries; /* forward passes and the entries they held */
} scheduler_stats;
void scheduler_get_stats(scheduler *s, scheduler_stats *out);

#endif
