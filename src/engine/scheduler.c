/*
 * scheduler.c — continuous batching. One engine thread owns the model, the KV cache and the
 * prompt cache. Requests wait in a queue (guarded by a mutex); every step the thread admits
 * what fits, drops cancelled sequences, and builds ONE batch: the next token of every decoding
 * sequence first, then chunks of prompts still being prefilled, up to max_batch entries. After
 * the forward pass each sequence that produced logits samples with its own sampler. Because
 * every batch row is computed independently, a greedy request gives the same tokens alone or
 * beside others.
 */
#include "engine/internal.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

typedef struct sequence {
    gen_request r;   /* prompt, bias and stop arrays point into owned copies below */
    int32_t *tokens; /* prompt then generated tokens */
    int n_tokens, cap;
    int32_t *bias_ids, *stop_ids;
    float *bias_values;
    int slot;     /* KV sequence slot, -1 while queued */
    int n_past;   /* positions whose K/V are in the cache */
    int cached;   /* prompt tokens adopted from the prompt cache */
    int32_t next; /* sampled token not yet fed back */
    int generated;
    sampler *smp;
    double t_submit, t_admit, t_first, t_last;
    struct sequence *next_queued;
} sequence;

struct scheduler {
    const model *m;
    forward_state *fs;
    kv_cache *kv;
    prompt_cache *pc;
    scheduler_opts o;
    int vocab;
    float *logits; /* [max_seqs, vocab] */
    batch_entry *batch;
    sequence **owner; /* which sequence each batch entry belongs to */
    sequence **running;
    int n_running;

    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    sequence *queue_head, *queue_tail;
    int n_queued;
    bool accepting, quit;
    atomic_bool cancel_all;

    pthread_mutex_t stats_lock;
    scheduler_stats stats;
};

static void seq_free(sequence *q) {
    sampler_free(q->smp);
    free(q->tokens);
    free(q->bias_ids);
    free(q->bias_values);
    free(q->stop_ids);
    free(q);
}

static void *dup_array(const void *src, int n, size_t size) {
    if (n <= 0 || !src) return NULL;
    void *p = xmalloc((size_t)n * size);
    memcpy(p, src, (size_t)n * size);
    return p;
}

/* Gauges that only the engine thread may read, published for scheduler_get_stats. */
static void publish_gauges(scheduler *s) {
    pthread_mutex_lock(&s->stats_lock);
    s->stats.kv_block_size = kv_cache_block_size(s->kv);
    s->stats.kv_blocks_total = kv_cache_total_blocks(s->kv);
    s->stats.kv_blocks_used = s->stats.kv_blocks_total - kv_cache_free_blocks(s->kv);
    s->stats.prompt_cache_entries = s->pc ? prompt_cache_entries(s->pc) : 0;
    s->stats.prompt_cache_bytes = s->pc ? prompt_cache_bytes(s->pc) : 0;
    pthread_mutex_unlock(&s->stats_lock);
}

/* Ends a sequence: its whole blocks go to the prompt cache, the caller hears of it, with the
 * gauges already showing its blocks released (a caller told "done" may read them at once). */
static void finish(scheduler *s, sequence *q, enum finish_reason why, const char *error) {
    if (q->slot >= 0) {
        int n_blocks = 0;
        const int *blocks = kv_seq_blocks(s->kv, q->slot, &n_blocks);
        int full = q->n_past / kv_cache_block_size(s->kv);
        if (s->pc && why != FINISH_ERROR && full > 0)
            prompt_cache_insert(s->pc, q->tokens, blocks, full < n_blocks ? full : n_blocks);
        kv_seq_free(s->kv, q->slot);
        publish_gauges(s);
    }
    double now = now_seconds();
    gen_result res = {.finish = why,
                      .prompt_tokens = q->r.n_prompt,
                      .cached_tokens = q->cached,
                      .generated = q->generated,
                      .queue_s = (q->t_admit > 0 ? q->t_admit : now) - q->t_submit,
                      .ttft_s = q->t_first > 0 ? q->t_first - q->t_submit : 0,
                      .decode_s = q->t_first > 0 ? q->t_last - q->t_first : 0};
    if (error) snprintf(res.error, sizeof res.error, "%s", error);
    q->r.on_done(q->r.ctx, &res);
    seq_free(q);
}

static bool cancelled(const scheduler *s, const sequence *q) {
    return atomic_load(&s->cancel_all) || (q->r.cancel && atomic_load(q->r.cancel));
}

/* Takes blocks for positions [0, n), evicting cached prompts when the pool is short. */
static int reserve(scheduler *s, int slot, int n) {
    for (;;) {
        if (kv_seq_reserve(s->kv, slot, n) == 0) return 0;
        if (!s->pc || !prompt_cache_evict_one(s->pc)) return -1;
    }
}

/* Gives a queued sequence a KV slot and whatever prefix the prompt cache holds. Returns 1 when
 * admitted, 0 when it must wait for room, -1 when it can never fit. */
static int admit(scheduler *s, sequence *q) {
    int slot = kv_seq_new(s->kv);
    if (slot < 0) return 0;
    int bs = kv_cache_block_size(s->kv), adopted = 0;
    if (s->pc) {
        const int *blocks = NULL;
        /* Leave at least one prompt token to run: its logits give the first token. */
        int nb =
            prompt_cache_lookup(s->pc, q->tokens, q->r.n_prompt, (q->r.n_prompt - 1) / bs, &blocks);
        if (nb > 0 && kv_seq_adopt(s->kv, slot, blocks, nb) == 0) adopted = nb * bs;
    }
    if (reserve(s, slot, q->r.n_prompt + 1) < 0) {
        kv_seq_free(s->kv, slot);
        return s->n_running > 0 ? 0 : -1;
    }
    q->slot = slot;
    q->n_past = q->cached = adopted;
    q->t_admit = now_seconds();
    pthread_mutex_lock(&s->stats_lock);
    if (adopted > 0) {
        s->stats.prompt_cache_hits++;
        s->stats.prompt_cache_hit_tokens += (uint64_t)adopted;
    } else if (s->pc) {
        s->stats.prompt_cache_misses++;
    }
    pthread_mutex_unlock(&s->stats_lock);
    return 1;
}

/* Is a running sequence still prefilling a prompt that starts with the same whole block as
 * q's? Then q waits a step or two and adopts those blocks from the prompt cache instead of
 * computing them again (n > 1 choices, or many clients with one system prompt). */
static bool same_prefix_prefilling(const scheduler *s, const sequence *q) {
    int bs = kv_cache_block_size(s->kv);
    if (!s->pc || q->r.n_prompt <= bs) return false;
    for (int i = 0; i < s->n_running; i++) {
        const sequence *r = s->running[i];
        if (r->n_past < r->r.n_prompt && r->r.n_prompt >= bs &&
            !memcmp(r->tokens, q->tokens, (size_t)bs * sizeof(int32_t)))
            return true;
    }
    return false;
}

/* Moves queued requests into free running places; blocks while there is nothing to do. */
static bool take_work(scheduler *s) {
    pthread_mutex_lock(&s->lock);
    while (!s->quit && s->n_running == 0 && !s->queue_head) pthread_cond_wait(&s->wake, &s->lock);
    if (s->quit) {
        pthread_mutex_unlock(&s->lock);
        return false;
    }
    while (s->queue_head && s->n_running < s->o.max_seqs) {
        sequence *q = s->queue_head;
        if (cancelled(s, q)) {
            s->queue_head = q->next_queued;
            s->n_queued--;
            pthread_mutex_unlock(&s->lock);
            finish(s, q, FINISH_CANCELLED, NULL);
            pthread_mutex_lock(&s->lock);
            continue;
        }
        if (same_prefix_prefilling(s, q)) break;
        int rc = admit(s, q);
        if (rc == 0) break;
        s->queue_head = q->next_queued;
        s->n_queued--;
        if (rc < 0) {
            pthread_mutex_unlock(&s->lock);
            finish(s, q, FINISH_ERROR, "the prompt does not fit in the KV cache");
            pthread_mutex_lock(&s->lock);
            continue;
        }
        s->running[s->n_running++] = q;
    }
    if (!s->queue_head) s->queue_tail = NULL;
    pthread_mutex_unlock(&s->lock);
    return true;
}

static void remove_running(scheduler *s, int i) {
    pthread_mutex_lock(&s->lock);
    memmove(&s->running[i], &s->running[i + 1],
            (size_t)(s->n_running - i - 1) * sizeof(sequence *));
    s->n_running--;
    pthread_mutex_unlock(&s->lock);
}

/* Fills the batch: decode tokens first (they are latency-bound), then prompt chunks. */
static int build_batch(scheduler *s) {
    int n = 0;
    for (int i = 0; i < s->n_running; i++) {
        sequence *q = s->running[i];
        if (q->n_past < q->r.n_prompt) continue;
        if (reserve(s, q->slot, q->n_past + 1) < 0) {
            remove_running(s, i--);
            finish(s, q, FINISH_LENGTH, NULL); /* KV pool exhausted: end it as if at length */
            continue;
        }
        s->owner[n] = q;
        s->batch[n++] =
            (batch_entry){.token = q->next, .pos = q->n_past, .seq = q->slot, .logits = true};
    }
    for (int i = 0; i < s->n_running && n < s->o.max_batch; i++) {
        sequence *q = s->running[i];
        int left = q->r.n_prompt - q->n_past;
        if (left <= 0) continue;
        int chunk = left < s->o.max_batch - n ? left : s->o.max_batch - n;
        for (int k = 0; k < chunk; k++) {
            int pos = q->n_past + k;
            s->owner[n] = q;
            s->batch[n++] = (batch_entry){.token = q->tokens[pos],
                                          .pos = pos,
                                          .seq = q->slot,
                                          .logits = pos == q->r.n_prompt - 1};
        }
    }
    return n;
}

/* The k most likely tokens of a (penalized) logits row, as log-probabilities. */
static void top_logprobs(const float *logits, int vocab, int k, gen_token *t) {
    float max = logits[0];
    for (int i = 1; i < vocab; i++) max = logits[i] > max ? logits[i] : max;
    double sum = 0;
    for (int i = 0; i < vocab; i++) sum += exp((double)(logits[i] - max));
    /* sum >= 1: the maximum contributes exp(0) */
    // cppcheck-suppress invalidFunctionArg
    float lse = max + (float)log(sum);
    int32_t best[GEN_MAX_TOP_LOGPROBS];
    int n = 0;
    for (int i = 0; i < vocab; i++) { /* insertion into a short sorted list */
        if (n == k && logits[i] <= logits[best[n - 1]]) continue;
        int j = n < k ? n++ : n - 1;
        while (j > 0 && logits[best[j - 1]] < logits[i]) best[j] = best[j - 1], j--;
        best[j] = i;
    }
    t->n_top = n;
    for (int i = 0; i < n; i++) {
        t->top_ids[i] = best[i];
        t->top_logprobs[i] = logits[best[i]] - lse;
    }
}

/* Samples the next token of q from its logits row; returns false when q has finished. */
static bool sample_next(scheduler *s, sequence *q, float *row) {
    double now = now_seconds();
    if (q->t_first == 0) q->t_first = now;
    q->t_last = now;
    for (int i = 0; i < q->r.n_bias; i++) row[q->r.bias_ids[i]] += q->r.bias_values[i];
    gen_token t = {0};
    t.id = sampler_sample(q->smp, row, q->r.logprobs || q->r.top_logprobs ? &t.logprob : NULL);
    for (int i = 0; i < q->r.n_stop; i++)
        if (t.id == q->r.stop_ids[i]) {
            finish(s, q, FINISH_STOP, NULL);
            return false;
        }
    if (q->r.top_logprobs > 0) top_logprobs(row, s->vocab, q->r.top_logprobs, &t);
    sampler_accept(q->smp, t.id);
    q->generated++;
    if (q->n_tokens == q->cap)
        q->tokens = xrealloc(q->tokens, (size_t)(q->cap *= 2) * sizeof(int32_t));
    q->tokens[q->n_tokens++] = t.id;
    q->next = t.id;
    if (q->r.on_token(q->r.ctx, &t) != 0) {
        finish(s, q, FINISH_STOP, NULL);
        return false;
    }
    if (q->generated >= q->r.max_tokens || q->n_past + 1 >= s->o.ctx) {
        finish(s, q, FINISH_LENGTH, NULL);
        return false;
    }
    return true;
}

static void step(scheduler *s) {
    for (int i = 0; i < s->n_running; i++)
        if (cancelled(s, s->running[i])) {
            sequence *q = s->running[i];
            remove_running(s, i--);
            finish(s, q, FINISH_CANCELLED, NULL);
        }
    int n = build_batch(s);
    if (n == 0) return;
    int rows = forward(s->fs, s->kv, s->batch, n, s->logits);
    pthread_mutex_lock(&s->stats_lock);
    s->stats.steps++;
    s->stats.batch_entries += (uint64_t)n;
    pthread_mutex_unlock(&s->stats_lock);
    if (rows < 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "forward pass failed: %s", kiln_last_error());
        while (s->n_running > 0) {
            sequence *q = s->running[0];
            remove_running(s, 0);
            finish(s, q, FINISH_ERROR, msg);
        }
        return;
    }
    /* Advance positions, then sample for every entry that asked for logits. */
    for (int i = 0; i < n; i++) s->owner[i]->n_past = s->batch[i].pos + 1;
    /* A prompt just prefilled goes to the prompt cache at once, so requests that share it
     * (waiting in same_prefix_prefilling, or arriving while this one decodes) adopt it. */
    for (int i = 0; i < n && s->pc; i++) {
        sequence *q = s->owner[i];
        if (!s->batch[i].logits || s->batch[i].pos != q->r.n_prompt - 1) continue;
        int n_blocks = 0, full = q->r.n_prompt / kv_cache_block_size(s->kv);
        const int *blocks = kv_seq_blocks(s->kv, q->slot, &n_blocks);
        if (full > 0) prompt_cache_insert(s->pc, q->tokens, blocks, full);
    }
    int row = 0;
    for (int i = 0; i < n; i++) {
        if (!s->batch[i].logits) continue;
        sequence *q = s->owner[i];
        if (!sample_next(s, q, s->logits + (size_t)row++ * s->vocab)) {
            for (int j = 0; j < s->n_running; j++)
                if (s->running[j] == q) {
                    remove_running(s, j);
                    break;
                }
        }
    }
}

static void *engine_main(void *arg) {
    scheduler *s = arg;
    publish_gauges(s);
    while (take_work(s)) {
        step(s);
        publish_gauges(s);
    }
    return NULL;
}

static void apply_defaults(scheduler_opts *o, const model *m) {
    if (o->max_seqs <= 0) o->max_seqs = 16;
    if (o->max_batch <= 0) o->max_batch = 256;
    if (o->max_batch < o->max_seqs) o->max_batch = o->max_seqs;
    if (o->max_queue <= 0) o->max_queue = 256;
    if (o->ctx <= 0) o->ctx = m->cfg.max_seq_len < 8192 ? m->cfg.max_seq_len : 8192;
    if (o->ctx > m->cfg.max_seq_len) o->ctx = m->cfg.max_seq_len;
    /* Enough for every sequence at full context, within a budget that keeps memory sane for
     * long-context models; each sequence can still reach ctx when others are short. */
    if (o->kv_tokens <= 0) {
        int64_t all = (int64_t)o->max_seqs * o->ctx, cap = o->ctx > 32768 ? o->ctx : 32768;
        o->kv_tokens = all < cap ? all : cap;
    }
    if (o->kv_tokens < o->ctx) o->kv_tokens = o->ctx;
    if (o->prompt_cache_size < 0) o->prompt_cache_size = 0;
}

scheduler *scheduler_create(const model *m, thread_pool *pool, const scheduler_opts *opts) {
    scheduler *s = xcalloc(1, sizeof *s);
    s->m = m;
    s->o = *opts;
    apply_defaults(&s->o, m);
    s->vocab = m->cfg.vocab_size;
    kv_cache_opts ko = s->o.kv;
    ko.max_tokens = s->o.kv_tokens;
    ko.max_seqs = s->o.max_seqs;
    s->kv = kv_cache_create(m, &ko);
    s->fs = s->kv ? forward_state_create(m, s->o.max_batch, pool) : NULL;
    s->logits = aligned_buffer((size_t)s->o.max_seqs * s->vocab * sizeof(float));
    if (!s->kv || !s->fs || !s->logits) {
        kv_cache_free(s->kv);
        forward_state_free(s->fs);
        aligned_free(s->logits);
        free(s);
        return NULL;
    }
    kv_cache_prefault(s->kv); /* commit the memory now, not page by page while serving */
    if (s->o.prompt_cache_size > 0)
        s->pc = prompt_cache_new(s->kv, s->o.prompt_cache_size, s->o.prompt_cache_bytes);
    s->batch = xmalloc((size_t)s->o.max_batch * sizeof *s->batch);
    s->owner = xmalloc((size_t)s->o.max_batch * sizeof *s->owner);
    s->running = xcalloc((size_t)s->o.max_seqs, sizeof *s->running);
    s->accepting = true;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->stats_lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    if (pthread_create(&s->thread, NULL, engine_main, s) != 0) {
        kiln_error("cannot start the engine thread");
        s->quit = true;
        scheduler_free(s);
        return NULL;
    }
    return s;
}

void scheduler_cancel_all(scheduler *s) {
    atomic_store(&s->cancel_all, true);
    pthread_mutex_lock(&s->lock);
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
}

void scheduler_stop_accepting(scheduler *s) {
    pthread_mutex_lock(&s->lock);
    s->accepting = false;
    pthread_mutex_unlock(&s->lock);
}

void scheduler_free(scheduler *s) {
    if (!s) return;
    scheduler_stop_accepting(s);
    scheduler_cancel_all(s);
    /* Let the engine thread finish the cancelled work, then stop it. */
    for (;;) {
        pthread_mutex_lock(&s->lock);
        bool idle = s->n_running == 0 && !s->queue_head;
        if (idle || s->quit) s->quit = true;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        if (idle || s->thread == 0) break;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    if (s->thread) pthread_join(s->thread, NULL);
    while (s->queue_head) { /* only if the thread never ran */
        sequence *q = s->queue_head;
        s->queue_head = q->next_queued;
        finish(s, q, FINISH_CANCELLED, NULL);
    }
    prompt_cache_free(s->pc);
    forward_state_free(s->fs);
    kv_cache_free(s->kv);
    aligned_free(s->logits);
    free(s->batch);
    free(s->owner);
    free(s->running);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->stats_lock);
    pthread_cond_destroy(&s->wake);
    free(s);
}

int scheduler_ctx(const scheduler *s) {
    return s->o.ctx;
}

static int validate(const scheduler *s, const gen_request *r) {
    if (r->n_prompt < 1) {
        kiln_error("the prompt is empty");
        return -1;
    }
    if (r->n_prompt >= s->o.ctx) {
        kiln_error("the prompt has %d tokens; the context holds %d", r->n_prompt, s->o.ctx);
        return -1;
    }
    for (int i = 0; i < r->n_prompt; i++)
        if (r->prompt[i] < 0 || r->prompt[i] >= s->vocab) {
            kiln_error("prompt token %d is out of range (vocabulary of %d)", r->prompt[i],
                       s->vocab);
            return -1;
        }
    for (int i = 0; i < r->n_bias; i++)
        if (r->bias_ids[i] < 0 || r->bias_ids[i] >= s->vocab) {
            kiln_error("logit_bias token %d is out of range (vocabulary of %d)", r->bias_ids[i],
                       s->vocab);
            return -1;
        }
    if (r->max_tokens < 1 || r->top_logprobs < 0 || r->top_logprobs > GEN_MAX_TOP_LOGPROBS ||
        !r->on_token || !r->on_done) {
        kiln_error("invalid generation request");
        return -1;
    }
    return 0;
}

enum submit_status scheduler_submit(scheduler *s, const gen_request *r) {
    if (validate(s, r) < 0) return SUBMIT_INVALID;
    sequence *q = xcalloc(1, sizeof *q);
    q->r = *r;
    q->cap = r->n_prompt + 16;
    q->tokens = xmalloc((size_t)q->cap * sizeof(int32_t));
    memcpy(q->tokens, r->prompt, (size_t)r->n_prompt * sizeof(int32_t));
    q->n_tokens = r->n_prompt;
    q->r.prompt = q->tokens;
    q->r.bias_ids = q->bias_ids = dup_array(r->bias_ids, r->n_bias, sizeof(int32_t));
    q->r.bias_values = q->bias_values = dup_array(r->bias_values, r->n_bias, sizeof(float));
    q->r.stop_ids = q->stop_ids = dup_array(r->stop_ids, r->n_stop, sizeof(int32_t));
    q->slot = -1;
    q->smp = sampler_new(&r->sampling, s->vocab);
    for (int i = 0; i < r->n_prompt; i++) sampler_accept(q->smp, r->prompt[i]);
    q->t_submit = now_seconds();
    pthread_mutex_lock(&s->lock);
    enum submit_status st = !s->accepting                   ? SUBMIT_STOPPED
                            : s->n_queued >= s->o.max_queue ? SUBMIT_QUEUE_FULL
                                                            : SUBMIT_OK;
    if (st == SUBMIT_OK) {
        if (s->queue_tail)
            s->queue_tail->next_queued = q;
        else
            s->queue_head = q;
        s->queue_tail = q;
        s->n_queued++;
        pthread_cond_signal(&s->wake);
    }
    pthread_mutex_unlock(&s->lock);
    if (st != SUBMIT_OK) {
        kiln_error(st == SUBMIT_STOPPED ? "the server is shutting down"
                                        : "the request queue is full (%d waiting)",
                   s->o.max_queue);
        seq_free(q);
    }
    return st;
}

void scheduler_get_stats(scheduler *s, scheduler_stats *out) {
    pthread_mutex_lock(&s->stats_lock);
    *out = s->stats;
    pthread_mutex_unlock(&s->stats_lock);
    pthread_mutex_lock(&s->lock);
    out->queued = s->n_queued;
    out->running = s->n_running;
    pthread_mutex_unlock(&s->lock);
}
