/*
 * test_golden.c — greedy generation on stories260K (a real trained llama2.c model) must
 * reproduce llama2.c's published output token for token, from the llama2.c checkpoint and
 * from its Hugging Face export (../shared/models/stories260K/hf/golden_greedy_256.json).
 */
#include "check.h"
#include "engine/engine.h"

static json_t *golden;

typedef struct collected {
    int32_t ids[512];
    int n;
} collected;

static int collect(void *ctx, int32_t token) {
    collected *c = ctx;
    c->ids[c->n++] = token;
    return 0;
}

static void greedy_matches(const char *model_path) {
    model *m = model_load(model_path);
    CHECK_MSG(m, "load %s: %s", model_path, kiln_last_error());
    if (!m) return;
    thread_pool *pool = pool_create(2);
    kv_cache *kv = kv_cache_create(m, &(kv_cache_opts){.max_tokens = 512, .max_seqs = 1});
    forward_state *fs = forward_state_create(m, 64, pool);
    sampler_params sp;
    sampler_params_default(&sp);
    sp.temperature = 0;
    sampler *s = sampler_new(&sp, m->cfg.vocab_size);
    json_t *want = json_object_get(golden, "greedy_ids");
    collected got = {0};
    int32_t bos = 1;
    generate_opts o = {.max_tokens = (int)json_array_size(want)};
    int n = generate(fs, kv, kv_seq_new(kv), s, &bos, 1, &o, collect, &got);
    CHECK_MSG(n == (int)json_array_size(want), "generated %d of %zu tokens", n,
              json_array_size(want));
    int first_diff = -1;
    for (int i = 0; i < got.n && i < (int)json_array_size(want) && first_diff < 0; i++)
        if (got.ids[i] != json_integer_value(json_array_get(want, i))) first_diff = i;
    CHECK_MSG(first_diff < 0, "%s: token %d differs from the golden output", model_path,
              first_diff);
    sampler_free(s);
    forward_state_free(fs);
    kv_cache_free(kv);
    pool_destroy(pool);
    model_free(m);
}

static char path_buf[1024];
static const char *shared_path(const char *rel) {
    const char *shared = getenv("SHARED");
    snprintf(path_buf, sizeof path_buf, "%s/%s", shared ? shared : "../shared", rel);
    return path_buf;
}

static void test_llama2c_checkpoint(void) {
    greedy_matches(shared_path("models/stories260K/stories260K.bin"));
}

static void test_hf_export(void) {
    greedy_matches(shared_path("models/stories260K/hf"));
}

int main(void) {
    golden = json_load_path(shared_path("models/stories260K/hf/golden_greedy_256.json"));
    if (!golden) {
        printf("not ok - golden file: %s\n", kiln_last_error());
        return 1;
    }
    RUN(test_llama2c_checkpoint);
    RUN(test_hf_export);
    json_decref(golden);
    return CHECK_DONE();
}
