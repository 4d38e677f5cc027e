/*
 * dispatch.c — chooses the kernel table once, from the CPU's features: the best of avx512,
 * avx2-vnni, avx2 and portable the CPU has, at most the one KILN_ISA names (for tests and
 * benchmarks that compare variants). The AVX2 table also needs FMA, F16C and BMI2 (every AVX2
 * CPU has them). The AVX-512 table (AVX-512 dense prefill, the quantized tiles with VNNI for
 * int16 and int8 activations) needs AVX512-F, BW, VL, DQ and VNNI on top; the AVX2-VNNI table
 * is the AVX2 one with the int8 tiles on AVX-VNNI (Intel client cores from Alder Lake on have
 * it without AVX-512). All checked here at run time, so no CPU gets code it cannot run.
 */
#include "compute/cpu/kernels.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const cpu_kernels *chosen;
static cpu_kernels avx512;   /* the AVX2 table with the AVX-512 dense and VNNI quantized tiles */
static cpu_kernels avx2vnni; /* the AVX2 table with the AVX-VNNI int8 tiles */
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

/* The tables from least to most capable; KILN_ISA caps the choice at one of them. */
enum level { PORTABLE, AVX2, AVX2_VNNI, AVX512 };

static enum level cap_from_env(void) {
    const char *want = getenv("KILN_ISA");
    if (!want) return AVX512;
    if (!strcmp(want, "portable")) return PORTABLE;
    if (!strcmp(want, "avx2")) return AVX2;
    if (!strcmp(want, "avx2-vnni")) return AVX2_VNNI;
    if (strcmp(want, "avx512") != 0)
        log_warn("KILN_ISA=%s is not one of portable, avx2, avx2-vnni, avx512: ignored", want);
    return AVX512;
}

static void choose(void) {
    const enum level cap = cap_from_env();
    __builtin_cpu_init();
    bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c") && __builtin_cpu_supports("bmi2");
    bool has_avx2vnni = has_avx2 && __builtin_cpu_supports("avxvnni");
    bool has_avx512 = has_avx2 && __builtin_cpu_supports("avx512f") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni");
    chosen = &cpu_kernels_portable;
    if (has_avx2 && cap >= AVX2) chosen = &cpu_kernels_avx2;
    if (has_avx2vnni && cap >= AVX2_VNNI) {
        avx2vnni = cpu_kernels_avx2;
        avx2vnni.name = "avx2-vnni";
        avx2vnni.quant8_rows = quant8_rows_avxvnni;
        chosen = &avx2vnni;
    }
    if (has_avx512 && cap >= AVX512) {
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

bool compute_interleaves_quantized(void) {
    const char *layout = getenv("KILN_QUANT_LAYOUT"), *isa = cpu_kernels_get()->name;
    if (layout && strcmp(layout, "rows") != 0 && strcmp(layout, "interleaved") != 0) {
        log_warn("KILN_QUANT_LAYOUT=%s is not one of rows, interleaved: ignored", layout);
        layout = NULL;
    }
    if (compute_activation_bits() != 8 || !strcmp(isa, "portable")) return false;
    if (layout) return !strcmp(layout, "interleaved");
    return !strcmp(isa, "avx2") || !strcmp(isa, "avx2-vnni");
}
