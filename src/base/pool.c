/*
 * pool.c — a persistent thread pool. The forward pass dispatches about a hundred parallel loops
 * per token, so workers spin briefly on the job state before sleeping: waking a thread through
 * a condition variable costs more than most of those loops take.
 *
 * A job is finished when its tasks are done, not when every worker has seen it: on a machine
 * shared with other processes a worker may not be scheduled for milliseconds, and the caller
 * (which runs tasks too) then simply does all the work. Tasks are claimed by compare-and-swap on
 * one 64-bit word holding the job's generation and the next task index, so a worker that wakes
 * late can never claim a task of a job it has not read: its claim fails once the generation
 * moved on. Job parameters alternate between two slots, and a slot is rewritten only two jobs
 * later, after every claim on it has completed.
 */
#include "base.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#define SPIN_ROUNDS 20000

typedef struct pool_job {
    pool_task_fn fn;
    void *ctx;
    int n_tasks;
} pool_job;

struct thread_pool {
    int n_threads; /* including the caller */
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    _Atomic uint64_t state; /* generation << 32 | next task index */
    atomic_int done;        /* tasks of the current job finished */
    atomic_int sleepers;    /* workers waiting on `wake` */
    atomic_bool stop;
    pool_job jobs[2]; /* the job of generation g is jobs[g & 1] */
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static inline uint32_t generation_of(uint64_t state) {
    return (uint32_t)(state >> 32);
}

/* Claims and runs tasks of job `gen` until none are left (or the pool moved on). */
static void run_tasks(thread_pool *p, uint32_t gen) {
    for (;;) {
        uint64_t s = atomic_load(&p->state);
        if (generation_of(s) != gen) return;
        const pool_job *job = &p->jobs[gen & 1];
        uint32_t task = (uint32_t)s;
        if (task >= (uint32_t)job->n_tasks) return;
        if (!atomic_compare_exchange_weak(&p->state, &s, s + 1)) continue;
        /* Claimed: job `gen` cannot finish (nor its slot be reused) before this task does. */
        job->fn(job->ctx, (int)task, job->n_tasks);
        atomic_fetch_add(&p->done, 1);
    }
}

static void *worker_main(void *arg) {
    thread_pool *p = arg;
    uint32_t seen = 0;
    for (;;) {
        int spins = 0;
        while (generation_of(atomic_load(&p->state)) == seen && !atomic_load(&p->stop)) {
            if (++spins < SPIN_ROUNDS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->lock);
            atomic_fetch_add(&p->sleepers, 1);
            while (generation_of(atomic_load(&p->state)) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->lock);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->lock);
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = generation_of(atomic_load(&p->state));
        run_tasks(p, seen);
    }
}

thread_pool *pool_create(int n_threads) {
    if (n_threads <= 0) n_threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n_threads <= 0) n_threads = 1;
    thread_pool *p = xcalloc(1, sizeof *p);
    p->n_threads = n_threads;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->threads = xcalloc((size_t)n_threads, sizeof *p->threads);
    for (int i = 1; i < n_threads; i++) pthread_create(&p->threads[i], NULL, worker_main, p);
    return p;
}

void pool_destroy(thread_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    free(p->threads);
    free(p);
}

int pool_size(const thread_pool *p) {
    return p ? p->n_threads : 1;
}

void pool_run(thread_pool *p, pool_task_fn fn, void *ctx, int n_tasks) {
    if (n_tasks <= 0) return;
    if (!p || p->n_threads == 1 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++) fn(ctx, t, n_tasks);
        return;
    }
    uint32_t gen = generation_of(atomic_load(&p->state)) + 1;
    p->jobs[gen & 1] = (pool_job){.fn = fn, .ctx = ctx, .n_tasks = n_tasks};
    atomic_store(&p->done, 0);
    atomic_store(&p->state, (uint64_t)gen << 32); /* publishes the job */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
    }
    run_tasks(p, gen);
    /* Tasks others claimed may still run; wait for them (briefly spinning, then yielding the
     * core, which may be the one the claiming thread needs). */
    for (int spins = 0; atomic_load(&p->done) < n_tasks; spins++) {
        if (spins < 200)
            cpu_relax();
        else
            sched_yield();
    }
}
