/*
 * test_scheduler.c — continuous batching and the prompt cache on stories260K, checked against
 * llama2.c's published greedy output (golden_greedy_256.json): a prompt made of the first k
 * golden tokens must continue with golden tokens k, k+1, ... whether it runs alone, beside 15
 * other requests in the same batches, or after a prompt-cache hit.
 */
#include "check.h"
#include "engine/engine.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#define N_GOLDEN 200

static int32_t golden[N_GOLDEN + 1]; /* BOS, then llama2.c's greedy tokens */
static model *m;
static thread_pool *pool;

typedef struct job {
    int32_t out[N_GOLDEN];
    int n_out;
    gen_result res;
    _Atomic bool done;
    _Atomic bool cancel;
    int stop_after; /* on_token asks to stop after this many tokens (0: never) */
} job;

static int on_token(void *ctx, const gen_token *t) {
    job *j = ctx;
    if (j->n_out < N_GOLDEN) j->out[j->n_out++] = t->id;
    return j->stop_after && j->n_out >= j->stop_after;
}

static void on_done(void *ctx, const gen_result *r) {
    job *j = ctx;
    j->res = *r;
    atomic_store(&j->done, true);
}

static void submit(scheduler *s, job *j, int prompt_len, int max_tokens) {
    gen_request r = {.prompt = golden,
                     .n_prompt = prompt_len,
                     .max_tokens = max_tokens,
                     .cancel = &j->cancel,
                     .on_token = on_token,
                     .on_done = on_done,
                     .ctx = j};
    sampler_params_default(&r.sampling);
    r.sampling.temperature = 0;
    CHECK_MSG(scheduler_submit(s, &r) == SUBMIT_OK, "submit: %s", kiln_last_error());
}

static void wait_done(job *j) {
    for (int i = 0; i < 60000 && !atomic_load(&j->done); i++) usleep(1000);
    CHECK_MSG(atomic_load(&j->done), "request did not finish");
}

/* The continuation of golden[0..k) must be golden[k..]. */
static void check_golden(const job *j, int k) {
    CHECK_MSG(j->n_out > 0, "no tokens for prompt of %d", k);
    for (int i = 0; i < j->n_out && k + i <= N_GOLDEN; i++)
        if (j->out[i] != golden[k + i]) {
            CHECK_MSG(0, "prompt of %d tokens: token %d is %d, golden %d", k, i, j->out[i],
                      golden[k + i]);
            return;
        }
}

static scheduler *make(int parallel, int cache) {
    scheduler_opts o = {.max_seqs = parallel, .max_batch = 64, .prompt_cache_size = cache};
    scheduler *s = scheduler_create(m, pool, &o);
    CHECK_MSG(s, "scheduler_create: %s", kiln_last_error());
    return s;
}

static void test_alone_matches_golden(void) {
    scheduler *s = make(1, 0);
    static job j;
    submit(s, &j, 1, 64);
    wait_done(&j);
    CHECK(j.n_out == 64 && j.res.finish == FINISH_LENGTH);
    check_golden(&j, 1);
    scheduler_free(s);
}

static void test_sixteen_together_match_golden(void) {
    scheduler *s = make(16, 0);
    static job jobs[16];
    for (int i = 0; i < 16; i++) submit(s, &jobs[i], 1 + 7 * i, 40);
    for (int i = 0; i < 16; i++) wait_done(&jobs[i]);
    for (int i = 0; i < 16; i++) {
        CHECK_MSG(jobs[i].n_out == 40, "job %d: %d tokens", i, jobs[i].n_out);
        check_golden(&jobs[i], 1 + 7 * i);
    }
    scheduler_stats st;
    scheduler_get_stats(s, &st);
    CHECK_MSG(st.batch_entries > st.steps, "no step batched several entries");
    scheduler_free(s);
}

static void test_prompt_cache_hit(void) {
    scheduler *s = make(4, 4);
    static job a, b;
    submit(s, &a, 100, 20);
    wait_done(&a);
    submit(s, &b, 130, 20); /* extends a's prompt and generated text */
    wait_done(&b);
    CHECK_MSG(a.res.cached_tokens == 0, "first request cached %d", a.res.cached_tokens);
    /* a left 100 + 19 positions: 7 whole blocks of 16 */
    CHECK_MSG(b.res.cached_tokens == 112, "second request cached %d", b.res.cached_tokens);
    check_golden(&a, 100);
    check_golden(&b, 130);
    scheduler_stats st;
    scheduler_get_stats(s, &st);
    CHECK(st.prompt_cache_hits == 1 && st.prompt_cache_entries == 1);
    scheduler_free(s);
}

/* Three requests with one prompt at once: the first prefills it, the others adopt its blocks. */
static void test_shared_prompt_prefilled_once(void) {
    scheduler *s = make(4, 4);
    static job j[3];
    for (int i = 0; i < 3; i++) submit(s, &j[i], 100, 10);
    for (int i = 0; i < 3; i++) wait_done(&j[i]);
    CHECK_MSG(j[0].res.cached_tokens == 0, "first cached %d", j[0].res.cached_tokens);
    for (int i = 1; i < 3; i++) {
        CHECK_MSG(j[i].res.cached_tokens == 96, "request %d cached %d", i, j[i].res.cached_tokens);
        check_golden(&j[i], 100);
    }
    check_golden(&j[0], 100);
    scheduler_free(s);
}

static void test_cancel_and_stop(void) {
    scheduler *s = make(2, 0);
    static job a, b;
    a.stop_after = 5;
    atomic_store(&b.cancel, true);
    submit(s, &a, 10, 50);
    submit(s, &b, 10, 50);
    wait_done(&a);
    wait_done(&b);
    CHECK(a.n_out == 5 && a.res.finish == FINISH_STOP);
    CHECK(b.res.finish == FINISH_CANCELLED);
    scheduler_stats st;
    scheduler_get_stats(s, &st);
    CHECK_MSG(st.kv_blocks_used == 0, "%d blocks still used", st.kv_blocks_used);
    scheduler_free(s);
}

static void test_rejects(void) {
    scheduler *s = make(1, 0);
    job j = {0};
    gen_request r = {.prompt = golden,
                     .n_prompt = 0,
                     .max_tokens = 1,
                     .on_token = on_token,
                     .on_done = on_done,
                     .ctx = &j};
    CHECK(scheduler_submit(s, &r) == SUBMIT_INVALID);
    int32_t bad = 9999;
    r.prompt = &bad;
    r.n_prompt = 1;
    CHECK(scheduler_submit(s, &r) == SUBMIT_INVALID);
    CHECK_CONTAINS(kiln_last_error(), "out of range");
    scheduler_stop_accepting(s);
    r.prompt = golden;
    CHECK(scheduler_submit(s, &r) == SUBMIT_STOPPED);
    scheduler_free(s);
}

int main(void) {
    const char *shared = getenv("SHARED");
    char path[1024];
    snprintf(path, sizeof path, "%s/models/stories260K/hf/golden_greedy_256.json",
             shared ? shared : "../shared");
    json_t *g = json_load_path(path);
    snprintf(path, sizeof path, "%s/models/stories260K/hf", shared ? shared : "../shared");
    m = g ? model_load(path) : NULL;
    if (!m) {
        printf("not ok - load: %s\n", kiln_last_error());
        return 1;
    }
    golden[0] = 1;
    for (int i = 0; i < N_GOLDEN; i++)
        golden[i + 1] =
            (int32_t)json_integer_value(json_array_get(json_object_get(g, "greedy_ids"), i));
    json_decref(g);
    pool = pool_create(2);
    RUN(test_alone_matches_golden);
    RUN(test_sixteen_together_match_golden);
    RUN(test_prompt_cache_hit);
    RUN(test_shared_prompt_prefilled_once);
    RUN(test_cancel_and_stop);
    RUN(test_rejects);
    pool_destroy(pool);
    model_free(m);
    return CHECK_DONE();
}
