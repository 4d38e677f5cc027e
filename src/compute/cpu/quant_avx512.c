/*
 * quant_avx512.c — the quantized tiles of quant_tiles.h with AVX512-VNNI's vpdpwssd (on 256-bit
 * registers, AVX512-VL) as the dot step: the int16 products and their accumulation in one
 * instruction instead of madd + add. Picked by dispatch.c only on CPUs with AVX512-F/BW/VL/VNNI
 * (never on AVX2-only machines); everything else of that table is the AVX2 code.
 */
#define QUANT_DOT_ACC(acc, w, x) _mm256_dpwssd_epi32((acc), (w), (x))
#define QUANT_ROWS_FN            quant_rows_avx512
#include "compute/cpu/quant_tiles.h"
