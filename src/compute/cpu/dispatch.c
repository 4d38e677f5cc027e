/*
 * dispatch.c — chooses the kernel table once, from the CPU's features (KILN_ISA=portable or
 * =avx2 overrides, for tests that compare variants). The AVX2 table also needs FMA, F16C and
 * BMI2 (every AVX2 CPU has them). The AVX-512 table (the quantized tiles with VNNI, for int16
 * and int8 activations) needs AVX512-F, BW, VL, DQ and VNNI on top, checked here at run time, so an
 * AVX2-only CPU never gets it.
 */
#include "compute/cpu/kernels.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const cpu_kernels *chosen;
static cpu_kernels avx512; /* the AVX2 table with the AVX-512 dense and VNNI quantized tiles */
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void choose(void) {
    const char *want = getenv("KILN_ISA");
    __builtin_cpu_init();
    bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c") && __builtin_cpu_supports("bmi2");
    bool has_avx512 = has_avx2 && __builtin_cpu_supports("avx512f") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni");
    chosen = &cpu_kernels_portable;
    if (has_avx2 && !(want && !strcmp(want, "portable"))) chosen = &cpu_kernels_avx2;
    if (has_avx512 && !(want && (!strcmp(want, "portable") || !strcmp(want, "avx2")))) {
        avx512 = cpu_kernels_avx2;
        avx512.name = "avx512";
        avx512.quant_rows = quant_rows_avx512;
        avx512.quant8_rows = quant8_rows_avx512;
        avx512.dense_rows = dense_rows_avx512;
        chosen = &avx512;
    }
}

const cpu_kernels *cpu_kernels_get(void) {
    pthread_once(&chosen_once, choose);
    return chosen;
}

const char *compute_isa(void) {
    return cpu_kernels_get()->name;
}
