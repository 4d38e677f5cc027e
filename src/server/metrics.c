/*
 * metrics.c — counters and histograms for GET /metrics in Prometheus' text format: requests
 * by status, prompt / cached / generated tokens, time to first token and per-token latency,
 * plus the scheduler's gauges (queue depth, running sequences, KV cache use, prompt cache).
 */
#include "server/internal.h"

#include <pthread.h>

#define N_BUCKETS 12

static const double ttft_bounds[N_BUCKETS] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                              1,    2.5,   5,    10,  30,   60};
static const double token_bounds[N_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                               0.1,   0.25,   0.5,   1,    2.5,   5};

typedef struct histogram {
    uint64_t counts[N_BUCKETS + 1];
    double sum;
    uint64_t n;
} histogram;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int status[16];
    uint64_t count[16];
    int n_status;
    uint64_t prompt, cached, generated;
    histogram ttft, token;
} m;

void metrics_request(int status) {
    pthread_mutex_lock(&lock);
    int i = 0;
    while (i < m.n_status && m.status[i] != status) i++;
    if (i == m.n_status && i < 16) m.status[m.n_status++] = status;
    if (i < 16) m.count[i]++;
    pthread_mutex_unlock(&lock);
}

void metrics_tokens(int prompt, int cached, int generated) {
    pthread_mutex_lock(&lock);
    m.prompt += (uint64_t)prompt;
    m.cached += (uint64_t)cached;
    m.generated += (uint64_t)generated;
    pthread_mutex_unlock(&lock);
}

static void observe(histogram *h, const double *bounds, double v) {
    int i = 0;
    while (i < N_BUCKETS && v > bounds[i]) i++;
    h->counts[i]++;
    h->sum += v;
    h->n++;
}

void metrics_ttft(double seconds) {
    pthread_mutex_lock(&lock);
    observe(&m.ttft, ttft_bounds, seconds);
    pthread_mutex_unlock(&lock);
}

void metrics_token_latency(double seconds) {
    pthread_mutex_lock(&lock);
    observe(&m.token, token_bounds, seconds);
    pthread_mutex_unlock(&lock);
}

static void render_histogram(strbuf *out, const char *name, const char *help, const histogram *h,
                             const double *bounds) {
    sb_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < N_BUCKETS; i++) {
        cum += h->counts[i];
        sb_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], (unsigned long long)cum);
    }
    sb_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
              (unsigned long long)h->n, name, h->sum, name, (unsigned long long)h->n);
}

static void counter(strbuf *out, const char *name, const char *help, uint64_t v) {
    sb_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
              (unsigned long long)v);
}

static void gauge(strbuf *out, const char *name, const char *help, double v) {
    sb_printf(out, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

void metrics_render(strbuf *out, scheduler *s) {
    pthread_mutex_lock(&lock);
    sb_puts(out, "# HELP kiln_requests_total Requests answered, by HTTP status.\n"
                 "# TYPE kiln_requests_total counter\n");
    for (int i = 0; i < m.n_status; i++)
        sb_printf(out, "kiln_requests_total{status=\"%d\"} %llu\n", m.status[i],
                  (unsigned long long)m.count[i]);
    counter(out, "kiln_prompt_tokens_total", "Prompt tokens of finished requests.", m.prompt);
    counter(out, "kiln_prompt_cached_tokens_total", "Prompt tokens served from the prompt cache.",
            m.cached);
    counter(out, "kiln_generation_tokens_total", "Generated tokens.", m.generated);
    render_histogram(out, "kiln_time_to_first_token_seconds",
                     "Time from request to first generated token.", &m.ttft, ttft_bounds);
    render_histogram(out, "kiln_time_per_output_token_seconds",
                     "Time between consecutive generated tokens of a request.", &m.token,
                     token_bounds);
    pthread_mutex_unlock(&lock);
    if (!s) return;
    scheduler_stats st;
    scheduler_get_stats(s, &st);
    gauge(out, "kiln_queue_depth", "Requests waiting for a sequence slot.", st.queued);
    gauge(out, "kiln_running_sequences", "Sequences being prefilled or decoded.", st.running);
    gauge(out, "kiln_kv_cache_blocks_used", "KV cache blocks in use (sequences and prompt cache).",
          st.kv_blocks_used);
    gauge(out, "kiln_kv_cache_blocks_total", "KV cache blocks.", st.kv_blocks_total);
    gauge(out, "kiln_kv_cache_usage_ratio", "Fraction of KV cache blocks in use.",
          st.kv_blocks_total ? (double)st.kv_blocks_used / st.kv_blocks_total : 0);
    gauge(out, "kiln_prompt_cache_entries", "Finished prompts kept in the prompt cache.",
          st.prompt_cache_entries);
    gauge(out, "kiln_prompt_cache_bytes", "KV bytes held by the prompt cache.",
          (double)st.prompt_cache_bytes);
    counter(out, "kiln_prompt_cache_hits_total", "Requests that reused cached KV blocks.",
            st.prompt_cache_hits);
    counter(out, "kiln_prompt_cache_misses_total", "Requests that found no cached prefix.",
            st.prompt_cache_misses);
    counter(out, "kiln_engine_steps_total", "Forward passes run by the scheduler.", st.steps);
    counter(out, "kiln_engine_batch_entries_total", "Tokens run through those forward passes.",
            st.batch_entries);
}
