/*
 * quant8_avxvnni.c — the int8-activation tiles of quant8_tiles.h with AVX-VNNI's vpdpbusd (the
 * VEX encoding of AVX512-VNNI's instruction, on 256-bit registers): CPUs that have it without
 * AVX-512, Intel's client cores from Alder Lake on among them, would otherwise run the AVX2
 * maddubs tiles. Bit-identical to the other variants. Picked by dispatch.c only on CPUs with
 * AVX2 and AVX-VNNI; the activations are quantized by the AVX2 code.
 */
#define QUANT8_VNNI    1
#define QUANT8_ZMM     0
#define QUANT8_ROWS_FN quant8_rows_avxvnni
#include "compute/cpu/quant8_tiles.h"
