/*
 * base.h — the face of kiln's lowest layer: errors, logging, memory, files
 * (whole reads, atomic writes, mmaps), JSON helpers and the thread pool.
 * Everything above may include this; it includes nothing of kiln's.
 */
#ifndef KILN_BASE_H
#define KILN_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define KILN_VERSION      "0.1.0"
#define ARRAY_LEN(a)      (sizeof(a) / sizeof((a)[0]))
#define KILN_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* ---- errors: functions return -1 (or NULL) and leave one line here ---- */
void kiln_error(const char *fmt, ...) KILN_PRINTF(1, 2);
/* Prepends context ("file.safetensors: ") to the current error message. */
void kiln_error_prefix(const char *fmt, ...) KILN_PRINTF(1, 2);
const char *kiln_last_error(void);

/* ---- logging to stderr; level from KILN_LOG=debug|info|warn|error ---- */
enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
void kiln_log(enum log_level level, const char *fmt, ...) KILN_PRINTF(2, 3);
#define log_debug(...) kiln_log(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  kiln_log(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  kiln_log(LOG_WARN, __VA_ARGS__)
#define log_error(...) kiln_log(LOG_ERROR, __VA_ARGS__)

/* ---- memory: allocation failure of bookkeeping memory is fatal ---- */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
/* Bytes of memory the process could still get without swapping (Linux: MemAvailable; elsewhere
 * physical memory; KILN_MEMORY_AVAILABLE=BYTES overrides); -1 when unknown. */
int64_t memory_available(void);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) KILN_PRINTF(1, 2);
/* Large buffers (activations, KV cache): 64-byte aligned, NULL + error on failure. */
void *aligned_buffer(size_t n);
void aligned_free(void *p);

/* ---- files ---- */
int read_file(const char *path, char **data, size_t *len); /* NUL-terminated */
int write_file_atomic(const char *path, const void *data, size_t len);
bool path_exists(const char *path);
bool is_directory(const char *path);
char *path_join(const char *dir, const char *name);
char *path_dirname(const char *path);

typedef struct mapped_file {
    const uint8_t *data;
    size_t size;
    char *path;
} mapped_file;
int map_file(const char *path, mapped_file *out); /* read-only, MADV_HUGEPAGE where it helps */
void unmap_file(mapped_file *f);
/* Gives back the pages wholly inside [p, p + n) of a read-only file mapping: they leave the
 * process's resident memory and are read from the file again if touched. */
void mapped_drop(const void *p, size_t n);

/* ---- JSON (jansson) ---- */
json_t *json_load_path(const char *path); /* NULL + error naming file, line, column */
/* Typed getters: return 0 with *out set, 1 if the key is absent (out untouched), -1 with an
 * error naming the key if present with the wrong type. */
int json_get_int(const json_t *obj, const char *key, long long *out);
int json_get_double(const json_t *obj, const char *key, double *out);
int json_get_bool(const json_t *obj, const char *key, bool *out);
int json_get_string(const json_t *obj, const char *key, const char **out);

/* ---- time ---- */
double now_seconds(void); /* monotonic */

/* ---- thread pool: runs fn(ctx, task, n_tasks) for task in [0, n_tasks) on all threads ---- */
typedef struct thread_pool thread_pool;
typedef void (*pool_task_fn)(void *ctx, int task, int n_tasks);
thread_pool *pool_create(int n_threads); /* n_threads <= 0: one per online core */
void pool_destroy(thread_pool *pool);
int pool_size(const thread_pool *pool);
void pool_run(thread_pool *pool, pool_task_fn fn, void *ctx, int n_tasks);

#endif
