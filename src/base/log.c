/*
 * log.c — leveled log lines on stderr with a timestamp, so server and deployment logs can
 * be read and grepped. The level comes from KILN_LOG once, at first use.
 */
#include "base.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int threshold = -1;

static int level_from_env(void) {
    const char *v = getenv("KILN_LOG");
    if (!v) return LOG_INFO;
    if (!strcmp(v, "debug")) return LOG_DEBUG;
    if (!strcmp(v, "warn")) return LOG_WARN;
    if (!strcmp(v, "error")) return LOG_ERROR;
    return LOG_INFO;
}

void kiln_log(enum log_level level, const char *fmt, ...) {
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (threshold < 0) threshold = level_from_env();
    if ((int)level < threshold) return;
    char stamp[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s %s %s\n", stamp, names[level], line);
}
