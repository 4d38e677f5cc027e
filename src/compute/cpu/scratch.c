/*
 * scratch.c — each thread's scratch buffers: the quantized activations a matmul call prepares
 * on its calling thread (quant_matmul.c), and the rows a quantized prefill task packs
 * (quant8_tiles.h). The calling thread also runs tasks, so the two uses get separate buffers.
 */
#include "compute/cpu/kernels.h"

#include <pthread.h>
#include <stdlib.h>

/* A thread's buffers, each grown (rarely) to the largest request seen: no allocation per token
 * once the first forward pass has run (op_matmul_reserve plans the activations ahead). Freed
 * when the thread ends. */
typedef struct scratch_buffers {
    void *data[SCRATCH_USES];
    size_t bytes[SCRATCH_USES];
} scratch_buffers;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p) {
    scratch_buffers *b = p;
    for (int i = 0; i < SCRATCH_USES; i++) aligned_free(b->data[i]);
    free(b);
}

static void scratch_key_create(void) {
    pthread_key_create(&scratch_key, scratch_free);
}

void *thread_scratch(enum scratch_use use, size_t bytes) {
    pthread_once(&scratch_once, scratch_key_create);
    scratch_buffers *b = pthread_getspecific(scratch_key);
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b || pthread_setspecific(scratch_key, b) != 0) {
            free(b);
            kiln_error("out of memory for a thread's scratch buffers");
            return NULL;
        }
    }
    if (bytes > b->bytes[use]) {
        aligned_free(b->data[use]);
        b->data[use] = aligned_buffer(bytes);
        b->bytes[use] = b->data[use] ? bytes : 0;
    }
    return b->data[use];
}
