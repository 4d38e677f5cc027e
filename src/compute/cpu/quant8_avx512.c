/*
 * quant8_avx512.c — the int8-activation tiles of quant8_tiles.h with AVX512-VNNI's vpdpbusd (on
 * 256-bit registers, AVX512-VL) as the product: four unsigned-by-signed byte products summed and
 * accumulated into int32 in one instruction. Picked by dispatch.c only on CPUs with
 * AVX512-F/BW/VL/VNNI; the activations are quantized by the AVX2 code.
 */
#define QUANT8_VNNI    1
#define QUANT8_ZMM     1
#define QUANT8_ROWS_FN quant8_rows_avx512
#include "compute/cpu/quant8_tiles.h"
