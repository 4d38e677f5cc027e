/*
 * error.c — one error message per thread. Library code sets it and returns failure; the
 * caller that can act on it (a CLI verb, an HTTP handler) reads it once.
 */
#include "base.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[1024];

void kiln_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
}

void kiln_error_prefix(const char *fmt, ...) {
    char prefix[512], old[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    size_t n = strnlen(prefix, sizeof prefix - 1);
    memcpy(last_error, prefix, n);
    size_t room = sizeof last_error - 1 - n;
    size_t m = strnlen(old, room);
    memcpy(last_error + n, old, m);
    last_error[n + m] = 0;
}

const char *kiln_last_error(void) {
    return last_error[0] ? last_error : "unknown error";
}
