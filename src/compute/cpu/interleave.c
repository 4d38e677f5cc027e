/*
 * interleave.c — quantized weights in interleaved order (compute.h): the copy made once at
 * load, and reading codes, scales and biases back in either layout (the portable kernels,
 * embedding rows, tests).
 */
#include "compute/cpu/kernels.h"

#include <string.h>

bool weight_can_interleave(const weight *w) {
    return (w->bits == 4 || w->bits == 8) &&
           (w->group_size == 32 || w->group_size == 64 || w->group_size == 128) &&
           (w->scale_dtype == DT_F16 || w->scale_dtype == DT_BF16) && w->rows > 0 &&
           w->rows % QUANT_TILE_ROWS == 0 && w->cols % w->group_size == 0 && !w->interleaved;
}

/* Offset of group g of the tile holding row r. */
static int64_t group_offset(const weight *w, int64_t r, int64_t g) {
    const int64_t groups = w->cols / w->group_size;
    return (r / QUANT_TILE_ROWS * groups + g) * interleaved_group_bytes(w);
}

/* Offset of the byte holding code k of row r (at 4 bits: in its low or high nibble). */
static int64_t code_offset(const weight *w, int64_t r, int64_t k, bool *high) {
    const int64_t in_group = k % w->group_size, block = in_group / QUANT8_BLOCK;
    const int c = (int)(in_group % QUANT8_BLOCK), lane = (int)(r % QUANT_TILE_ROWS);
    const int per_vector = w->bits == 4 ? 8 : 4; /* codes of one lane in one vector */
    *high = w->bits == 4 && c % 8 >= 4;
    return group_offset(w, r, k / w->group_size) + block * 32 * w->bits + (c / per_vector) * 32 +
           lane * 4 + c % 4;
}

unsigned quant_code(const weight *w, int64_t r, int64_t k) {
    if (!w->interleaved)
        return quant_code_at((const uint32_t *)w->data + r * (w->cols * w->bits / 32), k, w->bits);
    bool high;
    const uint8_t byte = ((const uint8_t *)w->data)[code_offset(w, r, k, &high)];
    return w->bits == 8 ? byte : high ? byte >> 4 : byte & 15u;
}

/* Index, in scale-dtype values, of row r's scale (bias: +QUANT_TILE_ROWS) in group g. */
static int64_t scale_index(const weight *w, int64_t r, int64_t g) {
    return (group_offset(w, r, g) + (int64_t)w->group_size * w->bits) / 2 + r % QUANT_TILE_ROWS;
}

float quant_scale(const weight *w, int64_t r, int64_t g) {
    if (!w->interleaved)
        return value_at(w->scales, w->scale_dtype, r * (w->cols / w->group_size) + g);
    return value_at(w->data, w->scale_dtype, scale_index(w, r, g));
}

float quant_bias(const weight *w, int64_t r, int64_t g) {
    if (!w->interleaved)
        return value_at(w->biases, w->scale_dtype, r * (w->cols / w->group_size) + g);
    return value_at(w->data, w->scale_dtype, scale_index(w, r, g) + QUANT_TILE_ROWS);
}

/* One lane of one vector (compute.h) from the row's 32-bit word w at the vector's offset in the
 * block: 8 bits, codes 4j..4j+3 as they are; 4 bits, the word's 8 nibbles n0..n7 (codes
 * 8j..8j+7, low nibble first) as n0 n4 n1 n5 n2 n6 n3 n7, i.e. codes 8j..8j+3 in the low
 * nibbles and 8j+4..8j+7 in the high ones: swap the middle bytes, then the middle nibbles of
 * each half. */
static uint32_t interleave_lane(uint32_t w, int bits) {
    if (bits == 8) return w;
    w = (w & 0xff0000ffu) | (w & 0x00ff0000u) >> 8 | (w & 0x0000ff00u) << 8;
    return (w & 0xf00ff00fu) | (w & 0x0f000f00u) >> 4 | (w & 0x00f000f0u) << 4;
}

/* Tiles [t0, t1) of row-major src into to's interleaved buffer. */
static void interleave_tiles(const weight *src, const weight *to, int64_t t0, int64_t t1) {
    const int64_t groups = src->cols / src->group_size, row_bytes = src->cols * src->bits / 8;
    const int blocks = src->group_size / QUANT8_BLOCK, vectors = src->bits;
    const uint16_t *scales = src->scales, *biases = src->biases;
    for (int64_t t = t0; t < t1; t++)
        for (int64_t g = 0; g < groups; g++) {
            uint8_t *out = (uint8_t *)to->data + group_offset(to, t * QUANT_TILE_ROWS, g);
            for (int i = 0; i < QUANT_TILE_ROWS; i++) {
                const int64_t r = t * QUANT_TILE_ROWS + i;
                const uint8_t *row = (const uint8_t *)src->data + r * row_bytes +
                                     g * src->group_size * src->bits / 8;
                for (int b = 0; b < blocks; b++)
                    for (int j = 0; j < vectors; j++) {
                        uint32_t word;
                        memcpy(&word, row + b * 4 * src->bits + 4 * j, 4);
                        word = interleave_lane(word, src->bits);
                        memcpy(out + (b * vectors + j) * 32 + 4 * i, &word, 4);
                    }
                uint16_t *sb = (uint16_t *)(void *)(out + (int64_t)src->group_size * src->bits);
                memcpy(&sb[i], &scales[r * groups + g], 2);
                memcpy(&sb[QUANT_TILE_ROWS + i], &biases[r * groups + g], 2);
            }
        }
}

typedef struct interleave_job {
    const weight *src, *to;
    int64_t tiles, per_task;
} interleave_job;

static void interleave_task(void *ctx, int task, int n_tasks) {
    (void)n_tasks;
    const interleave_job *j = ctx;
    int64_t t0 = task * j->per_task, t1 = t0 + j->per_task < j->tiles ? t0 + j->per_task : j->tiles;
    interleave_tiles(j->src, j->to, t0, t1);
}

void *weight_interleave(weight *w, thread_pool *pool) {
    const size_t bytes = weight_bytes(w);
    uint8_t *dst = weight_buffer(w, bytes, "interleaved");
    if (!dst) return NULL;
    weight to = *w;
    to.data = dst;
    to.interleaved = true;
    to.scales = to.biases = NULL;
    interleave_job j = {.src = w, .to = &to, .per_task = 64};
    j.tiles = w->rows / QUANT_TILE_ROWS;
    pool_run(pool, interleave_task, &j, (int)((j.tiles + j.per_task - 1) / j.per_task));
    *w = to;
    return dst;
}
