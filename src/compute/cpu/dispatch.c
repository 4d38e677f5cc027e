/*
 * dispatch.c — chooses the kernel table once, from the CPU's features (KILN_ISA=portable or
 * =avx2 overrides, for tests that compare variants). The AVX2 table also needs FMA, F16C and
 * BMI2 (every AVX2 CPU has them). No AVX-512 table exists yet, so none is ever picked.
 */
#include "compute/cpu/kernels.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const cpu_kernels *chosen;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void choose(void) {
    const char *want = getenv("KILN_ISA");
    __builtin_cpu_init();
    bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c") && __builtin_cpu_supports("bmi2");
    chosen = &cpu_kernels_portable;
    if (has_avx2 && !(want && !strcmp(want, "portable"))) chosen = &cpu_kernels_avx2;
}

const cpu_kernels *cpu_kernels_get(void) {
    pthread_once(&chosen_once, choose);
    return chosen;
}

const char *compute_isa(void) {
    return cpu_kernels_get()->name;
}
