/*
 * memory.c — allocation helpers. Small bookkeeping allocations abort on failure (there is
 * nothing sensible to do without a few bytes); big buffers report failure to the caller.
 */
#include "base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void out_of_memory(size_t n) {
    fprintf(stderr, "kiln: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) out_of_memory(n);
    return p;
}

void *xcalloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) out_of_memory(count * size);
    return p;
}

void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) out_of_memory(n);
    return q;
}

char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

char *xasprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) out_of_memory(0);
    return s;
}

void *aligned_buffer(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? (n + 63) & ~(size_t)63 : 64) != 0) {
        kiln_error("cannot allocate %zu bytes", n);
        return NULL;
    }
    return p;
}

void aligned_free(void *p) {
    free(p);
}

int64_t memory_available(void) {
    const char *cap = getenv("KILN_MEMORY_AVAILABLE"); /* bytes: a cap (and tests' way in) */
    if (cap && *cap) return strtoll(cap, NULL, 10);
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) { /* Linux: free memory plus what the kernel can reclaim (page cache and the like) */
        char line[128];
        long long kib = -1;
        while (kib < 0 && fgets(line, sizeof line, f))
            if (sscanf(line, "MemAvailable: %lld kB", &kib) != 1) kib = -1;
        fclose(f);
        if (kib >= 0) return (int64_t)kib << 10;
    }
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (int64_t)pages * page : -1;
}
