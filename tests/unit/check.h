/*
 * check.h — the unit tests' whole framework. Each test file is a program whose main() calls
 * RUN(test_fn) for each test; a test reports "ok - name" or "not ok - name: why" (TAP-like),
 * and tests/run.sh counts those lines.
 */
#ifndef KILN_CHECK_H
#define KILN_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failed_in_test;
static int check_total_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if (!check_failed_in_test)                                                             \
                printf("not ok - ");                                                               \
            else                                                                                   \
                printf("    also: ");                                                              \
            printf("%s:%d: CHECK(%s)\n", __FILE__, __LINE__, #cond);                               \
            check_failed_in_test = 1;                                                              \
        }                                                                                          \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if (!check_failed_in_test)                                                             \
                printf("not ok - ");                                                               \
            else                                                                                   \
                printf("    also: ");                                                              \
            printf("%s:%d: ", __FILE__, __LINE__);                                                 \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            check_failed_in_test = 1;                                                              \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    CHECK_MSG((a) && (b) && strcmp((a), (b)) == 0, "\"%s\" != \"%s\"", (a) ? (a) : "(null)",       \
              (b) ? (b) : "(null)")

/* An error message must contain a fragment (kiln's errors are part of its contract). */
#define CHECK_CONTAINS(haystack, needle)                                                           \
    CHECK_MSG((haystack) && strstr((haystack), (needle)), "\"%s\" does not contain \"%s\"",        \
              (haystack) ? (haystack) : "(null)", (needle))

#define RUN(fn)                                                                                    \
    do {                                                                                           \
        check_failed_in_test = 0;                                                                  \
        fflush(stdout);                                                                            \
        fn();                                                                                      \
        if (!check_failed_in_test)                                                                 \
            printf("ok - %s\n", #fn);                                                              \
        else {                                                                                     \
            printf("    (in %s)\n", #fn);                                                          \
            check_total_failed++;                                                                  \
        }                                                                                          \
        fflush(stdout);                                                                            \
    } while (0)

#define CHECK_DONE() (check_total_failed ? 1 : 0)

/* Test data: uniform in [-1, 1) from a xorshift64 stream, the same on every platform and run. */
static inline float check_urand(void) {
    static uint64_t rng = 88172645463325252ull;
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

#endif
