/*
 * internal.h — private to the convert layer: the plan of a conversion (what becomes of each
 * source tensor, in which shard at which offset) shared by the planner (convert.c), the shard
 * writer (write.c) and the small-file helpers (files.c).
 */
#ifndef KILN_CONVERT_INTERNAL_H
#define KILN_CONVERT_INTERNAL_H

#include "convert/convert.h"
#include "model/model.h"

#include <signal.h>

typedef struct job {
    const tensor_info *src;
    const tensor_info *scales, *biases; /* --dequantize: the source's */
    char module[256];                   /* name without ".weight" */
    int bits, group;                    /* 0: written as float (or copied) */
    enum dtype out_dtype;               /* float outputs and scales/biases */
    uint64_t bytes;                     /* all its outputs */
    int shard;
    uint64_t offset; /* in its shard's data */
} job;

typedef struct plan {
    job *jobs;
    size_t n;
    int n_shards;
    uint64_t total;
} plan;

/* Set by SIGINT/SIGTERM during a conversion; the writer stops at the next tensor. */
extern volatile sig_atomic_t convert_interrupted;

bool convert_ends_with(const char *s, const char *suffix);
/* Writes the shards of p into dir and fills weight_map (name -> file); -1 + error. */
int write_shards(const convert_opts *o, const plan *p, const char *dir, json_t *weight_map);
int write_index(const plan *p, json_t *weight_map, const char *dir);
int write_config(const convert_opts *o, const json_t *src_cfg, const plan *p, const char *dir);
/* Copies the tokenizer, chat template, generation config and other small files. */
int copy_files(const char *src, const char *dir);
void remove_tree(const char *path);

#endif
