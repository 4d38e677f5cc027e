/*
 * test_pool.c — the thread pool runs every task of every job exactly once, whatever the
 * number of threads and tasks, across many back-to-back jobs (workers that wake late must not
 * run a task twice or a task of the wrong job), and pool_run returns only when all are done.
 */
#include "check.h"
#include "base/base.h"

#include <stdatomic.h>

typedef struct count_job {
    atomic_int *hits;
    int job;
    atomic_int *wrong;
} count_job;

static void count_task(void *ctx, int task, int n_tasks) {
    const count_job *j = ctx;
    if (task < 0 || task >= n_tasks) atomic_fetch_add(j->wrong, 1);
    /* Slow tasks (the later ones, often claimed by a worker) count only at their end: a
     * pool_run that returned early would see them missing. */
    if (task % 7 == 6)
        for (volatile int spin = 0; spin < 3000; spin++) {
        }
    atomic_fetch_add(&j->hits[task], 1);
}

static void every_task_once(void) {
    static const int threads[] = {1, 2, 3, 8};
    enum { MAX_TASKS = 300, JOBS = 1500 };
    static atomic_int hits[MAX_TASKS];
    atomic_int wrong = 0;
    int bad = 0;
    for (size_t t = 0; t < ARRAY_LEN(threads); t++) {
        thread_pool *pool = pool_create(threads[t]);
        for (int job = 0; job < JOBS; job++) {
            int n = 1 + (job * 37) % MAX_TASKS;
            for (int i = 0; i < n; i++) atomic_store(&hits[i], 0);
            count_job j = {.hits = hits, .job = job, .wrong = &wrong};
            pool_run(pool, count_task, &j, n);
            for (int i = 0; i < n; i++)
                if (atomic_load(&hits[i]) != 1 && bad++ < 3)
                    printf("    %d threads, job %d: task %d ran %d times\n", threads[t], job, i,
                           atomic_load(&hits[i]));
        }
        pool_destroy(pool);
    }
    CHECK_MSG(bad == 0 && wrong == 0, "%d tasks ran other than once, %d out of range", bad,
              (int)wrong);
}

int main(void) {
    RUN(every_task_once);
    return CHECK_DONE();
}
