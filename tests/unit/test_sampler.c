/*
 * test_sampler.c — greedy picks against a plain first-maximum scan: every length around the
 * 8-wide loop's tails, the maximum in the tail, ties (the first one wins), -inf and NaN logits.
 */
#include "check.h"
#include "engine/engine.h"

/* The first index of the largest non-NaN value; 0 when there is none. */
static int first_max(const float *x, int n) {
    int best = -1;
    for (int i = 0; i < n; i++)
        if (!isnan(x[i]) && (best < 0 || x[i] > x[best])) best = i;
    return best < 0 ? 0 : best;
}

static int greedy(const float *x, int n) {
    sampler_params p;
    sampler_params_default(&p);
    p.temperature = 0;
    sampler *s = sampler_new(&p, n);
    float *copy = xmalloc((size_t)n * sizeof(float));
    memcpy(copy, x, (size_t)n * sizeof(float));
    int got = sampler_sample(s, copy, NULL);
    free(copy);
    sampler_free(s);
    return got;
}

static void greedy_is_first_maximum(void) {
    float x[80];
    int bad = 0;
    for (int n = 1; n <= 80; n++)
        for (int trial = 0; trial < 6; trial++) {
            for (int i = 0; i < n; i++) x[i] = check_urand();
            if (trial == 1) x[n - 1] = 2;                 /* in the tail */
            if (trial == 2 && n > 3) x[1] = x[n - 2] = 3; /* a tie: the first wins */
            if (trial == 3)
                for (int i = 0; i < n; i++) x[i] = -INFINITY;
            if (trial == 4) x[0] = NAN, x[n / 2] = NAN; /* NaNs never win */
            if (trial == 5)
                for (int i = 0; i < n; i++) x[i] = NAN;
            int want = first_max(x, n), got = greedy(x, n);
            if (got != want && bad++ < 3)
                printf("    n=%d trial %d: %d, expected %d\n", n, trial, got, want);
        }
    CHECK_MSG(bad == 0, "%d wrong picks", bad);
}

int main(void) {
    RUN(greedy_is_first_maximum);
    return CHECK_DONE();
}
