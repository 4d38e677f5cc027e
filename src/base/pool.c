/*
 * pool.c — a persistent thread pool. The forward pass dispatches a few hundred parallel loops
 * per token, so workers spin briefly on a generation counter before sleeping: waking a thread
 * through a condition variable costs more than most of those loops take.
 */
#include "base.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#define SPIN_ROUNDS 20000

struct thread_pool {
    int n_threads; /* including the caller */
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_uint generation; /* bumped once per pool_run */
    atomic_int next_task;
    atomic_int pending; /* workers still inside the current job */
    atomic_bool stop;
    pool_task_fn fn;
    void *ctx;
    int n_tasks;
};

static void run_tasks(thread_pool *p) {
    for (;;) {
        int t = atomic_fetch_add(&p->next_task, 1);
        if (t >= p->n_tasks) break;
        p->fn(p->ctx, t, p->n_tasks);
    }
}

static void *worker_main(void *arg) {
    thread_pool *p = arg;
    unsigned seen = 0;
    for (;;) {
        int spins = 0;
        while (atomic_load(&p->generation) == seen && !atomic_load(&p->stop)) {
            if (++spins < SPIN_ROUNDS) continue;
            pthread_mutex_lock(&p->lock);
            while (atomic_load(&p->generation) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->lock);
            pthread_mutex_unlock(&p->lock);
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = atomic_load(&p->generation);
        run_tasks(p);
        atomic_fetch_sub(&p->pending, 1);
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
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store(&p->next_task, 0);
    atomic_store(&p->pending, p->n_threads - 1);
    pthread_mutex_lock(&p->lock);
    atomic_fetch_add(&p->generation, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    run_tasks(p);
    while (atomic_load(&p->pending) > 0) sched_yield();
}
