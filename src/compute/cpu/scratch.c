/*
 * scratch.c — each thread's scratch buffer for the kernels that pack weights per call (the
 * quantized prefill tiles, quant8_tiles.h).
 */
#include "compute/cpu/kernels.h"

#include <pthread.h>
#include <stdlib.h>

/* A per-thread buffer, grown (rarely) to the widest weight seen: no allocation per token once
 * the first forward pass has run. Freed when its thread ends. */
typedef struct scratch_buffer {
    float *data;
    int64_t floats;
} scratch_buffer;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p) {
    scratch_buffer *b = p;
    free(b->data);
    free(b);
}

static void scratch_key_create(void) {
    pthread_key_create(&scratch_key, scratch_free);
}

float *kernel_scratch(int64_t floats) {
    pthread_once(&scratch_once, scratch_key_create);
    scratch_buffer *b = pthread_getspecific(scratch_key);
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b || pthread_setspecific(scratch_key, b) != 0) {
            free(b);
            return NULL;
        }
    }
    if (floats > b->floats) {
        free(b->data);
        b->data = aligned_alloc(64, (size_t)(floats * (int64_t)sizeof(float) + 63) & ~(size_t)63);
        b->floats = b->data ? floats : 0;
    }
    return b->data;
}
