/*
 * make_random_model.c — writes a Hugging Face-layout Llama model with random weights of a real
 * shape, offline, for speed tests: config.json (model_type llama) and model.safetensors (or
 * shards of at most 4 GB with model.safetensors.index.json). Dense F32/F16/BF16, or the MLX
 * affine-quantized layout (U32 codes as a little-endian bit stream per row, scales and biases
 * per group) at 4 or 8 bits. Values are random but tame (no NaN/Inf, activations stay finite);
 * they mean nothing. The folder is written under a temporary name and renamed at the end.
 *
 *   make_random_model [--shape llama-1b|smollm-135m|tiny-long] [--dtype bf16|f16|f32]
 *                     [--bits 4|8] [--group-size 64] [--seed N] [--force] OUT_DIR
 *
 * --dtype is the float type of dense weights, norms and (when quantized) scales and biases;
 * default bf16, or f16 with --bits.
 */
#define _XOPEN_SOURCE 700
#include "base/base.h"
#include "compute/compute.h"
#include "random_model.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHARD_LIMIT 4000000000ull
#define MAX_TENSORS 1024

enum kind { K_FLOAT, K_NORM, K_CODES, K_SCALES, K_BIASES };

typedef struct tensor {
    char name[96];
    enum kind kind;
    const char *dtype;   /* safetensors name */
    int64_t rows, cols;  /* cols < 0: 1-D of rows */
    int64_t in_features; /* fan-in (sets the amplitude) */
    int bits;            /* quantized tensors */
    uint64_t bytes;
    int shard;
    uint64_t offset;
} tensor;

typedef struct plan {
    tensor t[MAX_TENSORS];
    int n;
    int bits, group;
    const char *float_dtype; /* "BF16", "F16", "F32" */
    size_t float_size;
} plan;

static void add(plan *p, const char *name, enum kind k, const char *dtype, int64_t rows,
                int64_t cols, int64_t fan_in) {
    tensor *t = &p->t[p->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->kind = k;
    t->dtype = dtype;
    t->rows = rows;
    t->cols = cols;
    t->in_features = fan_in;
    t->bits = p->bits;
    size_t es = !strcmp(dtype, "F32") || !strcmp(dtype, "U32") ? 4 : 2;
    t->bytes = (uint64_t)rows * (uint64_t)(cols < 0 ? 1 : cols) * es;
}

/* A linear (or embedding) weight [out, in]: dense, or codes + scales + biases. */
static void add_linear(plan *p, const char *prefix, int64_t out, int64_t in) {
    char n[96];
    if (p->bits && in % p->group == 0) {
        snprintf(n, sizeof n, "%s.weight", prefix);
        add(p, n, K_CODES, "U32", out, in * p->bits / 32, in);
        snprintf(n, sizeof n, "%s.scales", prefix);
        add(p, n, K_SCALES, p->float_dtype, out, in / p->group, in);
        snprintf(n, sizeof n, "%s.biases", prefix);
        add(p, n, K_BIASES, p->float_dtype, out, in / p->group, in);
        return;
    }
    snprintf(n, sizeof n, "%s.weight", prefix);
    add(p, n, K_FLOAT, p->float_dtype, out, in, in);
}

static void build_plan(plan *p, const shape *s) {
    char n[96];
    int64_t q = (int64_t)s->heads * s->head_dim, kv = (int64_t)s->kv_heads * s->head_dim;
    add_linear(p, "model.embed_tokens", s->vocab, s->dim);
    for (int l = 0; l < s->layers; l++) {
#define P(x) (snprintf(n, sizeof n, "model.layers.%d.%s", l, x), n)
        add(p, P("input_layernorm.weight"), K_NORM, p->float_dtype, s->dim, -1, 0);
        add_linear(p, P("self_attn.q_proj"), q, s->dim);
        add_linear(p, P("self_attn.k_proj"), kv, s->dim);
        add_linear(p, P("self_attn.v_proj"), kv, s->dim);
        add_linear(p, P("self_attn.o_proj"), s->dim, q);
        add(p, P("post_attention_layernorm.weight"), K_NORM, p->float_dtype, s->dim, -1, 0);
        add_linear(p, P("mlp.gate_proj"), s->ffn, s->dim);
        add_linear(p, P("mlp.up_proj"), s->ffn, s->dim);
        add_linear(p, P("mlp.down_proj"), s->dim, s->ffn);
#undef P
    }
    add(p, "model.norm.weight", K_NORM, p->float_dtype, s->dim, -1, 0);
}

static uint16_t to_half(float f, const char *dtype) {
    return !strcmp(dtype, "F16") ? f32_to_f16(f) : f32_to_bf16(f);
}

/* Fills buf (n elements of the tensor's dtype) with random values of the tensor's kind. */
static void fill(void *buf, size_t n, const tensor *t) {
    if (t->kind == K_CODES) {
        uint64_t *w = buf;
        for (size_t i = 0; i < n / 2; i++) w[i] = rng_next();
        if (n & 1) ((uint32_t *)buf)[n - 1] = (uint32_t)rng_next();
        return;
    }
    /* Dense weights uniform in ±amp with amp = 1/sqrt(fan_in): activations stay O(1). Quantized:
     * scale so the dequantized range matches; bias centres the codes on zero. */
    float amp = t->in_features > 0 ? 1.0f / sqrtf((float)t->in_features) : 0;
    bool is32 = !strcmp(t->dtype, "F32");
    const char *dt = t->dtype;
    if (t->kind == K_NORM || t->kind == K_SCALES || t->kind == K_BIASES) {
        for (size_t i = 0; i < n; i++) {
            float v = 1.0f;
            if (t->kind != K_NORM) {
                float levels = (float)((1 << t->bits) - 1);
                float u = (float)(rng_next() >> 40) * (1.0f / 16777216.0f); /* [0,1) */
                float step = 2.0f * amp * (0.5f + u) / levels;
                v = t->kind == K_SCALES ? step : -0.5f * levels * step;
            }
            if (is32)
                ((float *)buf)[i] = v;
            else
                ((uint16_t *)buf)[i] = to_half(v, dt);
        }
        return;
    }
    if (is32) {
        float *f = buf;
        for (size_t i = 0; i + 1 < n; i += 2) {
            uint64_t r = rng_next();
            f[i] = amp * ((float)(int32_t)(uint32_t)r * (1.0f / 2147483648.0f));
            f[i + 1] = amp * ((float)(int32_t)(uint32_t)(r >> 32) * (1.0f / 2147483648.0f));
        }
        if (n & 1) f[n - 1] = 0;
        return;
    }
    fill_half(buf, n, amp, !strcmp(dt, "F16"));
}

static void shape_json(char *out, size_t len, const tensor *t) {
    if (t->cols < 0)
        snprintf(out, len, "[%lld]", (long long)t->rows);
    else
        snprintf(out, len, "[%lld,%lld]", (long long)t->rows, (long long)t->cols);
}

static int write_shard(const char *path, plan *p, int shard) {
    size_t cap = 256 + (size_t)p->n * 200;
    char *hdr = xmalloc(cap);
    size_t len = (size_t)snprintf(hdr, cap, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (int i = 0; i < p->n; i++) {
        tensor *t = &p->t[i];
        if (t->shard != shard) continue;
        char sh[64];
        shape_json(sh, sizeof sh, t);
        t->offset = off;
        len += (size_t)snprintf(
            hdr + len, cap - len,
            ",\"%s\":{\"dtype\":\"%s\",\"shape\":%s,\"data_offsets\":[%llu,%llu]}", t->name,
            t->dtype, sh, (unsigned long long)off, (unsigned long long)(off + t->bytes));
        off += t->bytes;
    }
    hdr[len++] = '}';
    while (len % 8) hdr[len++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) {
        kiln_error("%s: %s", path, strerror(errno));
        free(hdr);
        return -1;
    }
    uint64_t hl = len;
    uint8_t le[8];
    for (int b = 0; b < 8; b++) le[b] = (uint8_t)(hl >> (8 * b));
    int rc = fwrite(le, 1, 8, f) == 8 && fwrite(hdr, 1, len, f) == len ? 0 : -1;
    free(hdr);
    const size_t chunk = 8u << 20;
    uint8_t *buf = xmalloc(chunk);
    for (int i = 0; i < p->n && rc == 0; i++) {
        const tensor *t = &p->t[i];
        if (t->shard != shard) continue;
        size_t es = !strcmp(t->dtype, "F32") || !strcmp(t->dtype, "U32") ? 4 : 2;
        for (uint64_t done = 0; done < t->bytes && rc == 0;) {
            size_t n = t->bytes - done < chunk ? (size_t)(t->bytes - done) : chunk;
            fill(buf, n / es, t);
            if (fwrite(buf, 1, n, f) != n) rc = -1;
            done += n;
        }
    }
    free(buf);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) rc = -1;
    if (fclose(f) != 0) rc = -1;
    if (rc < 0) kiln_error("%s: write failed: %s", path, strerror(errno));
    return rc;
}

static int write_config(const char *dir, const shape *s, const plan *p, const char *torch_dtype) {
    char quant[256] = "";
    if (p->bits)
        snprintf(quant, sizeof quant,
                 "  \"quantization\": {\"group_size\": %d, \"bits\": %d, \"mode\": \"affine\"},\n"
                 "  \"quantization_config\": {\"group_size\": %d, \"bits\": %d, \"mode\": "
                 "\"affine\"},\n",
                 p->group, p->bits, p->group, p->bits);
    char rope[256] = "  \"rope_scaling\": null,\n";
    if (s->llama3_rope)
        snprintf(rope, sizeof rope,
                 "  \"rope_scaling\": {\"factor\": 32.0, \"high_freq_factor\": 4.0, "
                 "\"low_freq_factor\": 1.0, \"original_max_position_embeddings\": 8192, "
                 "\"rope_type\": \"llama3\"},\n");
    char *json = xasprintf(
        "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n"
        "  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n  \"num_hidden_layers\": %d,\n"
        "  \"num_attention_heads\": %d,\n  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n"
        "  \"vocab_size\": %d,\n  \"max_position_embeddings\": %d,\n  \"rms_norm_eps\": %g,\n"
        "  \"rope_theta\": %.1f,\n%s%s  \"tie_word_embeddings\": true,\n"
        "  \"hidden_act\": \"silu\",\n  \"attention_bias\": false,\n  \"mlp_bias\": false,\n"
        "  \"bos_token_id\": 1,\n  \"eos_token_id\": 2,\n  \"torch_dtype\": \"%s\",\n"
        "  \"kiln_random_shape\": \"%s\"\n}\n",
        s->dim, s->ffn, s->layers, s->heads, s->kv_heads, s->head_dim, s->vocab, s->ctx,
        s->norm_eps, s->rope_theta, rope, quant, torch_dtype, s->name);
    char *path = path_join(dir, "config.json");
    int rc = write_file_atomic(path, json, strlen(json));
    free(path);
    free(json);
    return rc;
}

static int write_index(const char *dir, const plan *p, int n_shards) {
    size_t cap = 256 + (size_t)p->n * 160, len = 0;
    char *json = xmalloc(cap);
    uint64_t total = 0;
    for (int i = 0; i < p->n; i++) total += p->t[i].bytes;
    len += (size_t)snprintf(json + len, cap - len,
                            "{\n  \"metadata\": {\"total_size\": %llu},\n  \"weight_map\": {",
                            (unsigned long long)total);
    for (int i = 0; i < p->n; i++)
        len += (size_t)snprintf(json + len, cap - len,
                                "%s\n    \"%s\": \"model-%05d-of-%05d.safetensors\"", i ? "," : "",
                                p->t[i].name, p->t[i].shard + 1, n_shards);
    len += (size_t)snprintf(json + len, cap - len, "\n  }\n}\n");
    char *path = path_join(dir, "model.safetensors.index.json");
    int rc = write_file_atomic(path, json, len);
    free(path);
    free(json);
    return rc;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static const char *usage =
    "make_random_model [--shape llama-1b|smollm-135m|tiny-long] [--dtype bf16|f16|f32]\n"
    "                  [--bits 4|8] [--group-size 64] [--seed N] [--force] OUT_DIR";

int main(int argc, char **argv) {
    const char *shape_name = "llama-1b", *dtype = NULL;
    int bits = 0, group = 64, force = 0;
    unsigned long long seed = 1;
    static const struct option opts[] = {
        {"shape", 1, 0, 's'}, {"dtype", 1, 0, 'd'}, {"bits", 1, 0, 'b'}, {"group-size", 1, 0, 'g'},
        {"seed", 1, 0, 'r'},  {"force", 0, 0, 'f'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 's')
            shape_name = optarg;
        else if (c == 'd')
            dtype = optarg;
        else if (c == 'b')
            bits = atoi(optarg);
        else if (c == 'g')
            group = atoi(optarg);
        else if (c == 'r')
            seed = strtoull(optarg, NULL, 0);
        else if (c == 'f')
            force = 1;
        else
            return usage_exit(usage, c == 'h' ? 0 : 2);
    }
    if (optind != argc - 1) return usage_exit(usage, 2);
    const char *out = argv[optind];
    const shape *s = shape_named("make_random_model", shape_name);
    if (!s) return 2;
    static plan p;
    const char *torch_dtype;
    if (!dtype) dtype = bits ? "f16" : "bf16"; /* MLX quantized models mostly carry f16 scales */
    if (!strcmp(dtype, "bf16"))
        p.float_dtype = "BF16", torch_dtype = "bfloat16";
    else if (!strcmp(dtype, "f16"))
        p.float_dtype = "F16", torch_dtype = "float16";
    else if (!strcmp(dtype, "f32"))
        p.float_dtype = "F32", torch_dtype = "float32";
    else {
        fprintf(stderr, "make_random_model: --dtype must be bf16, f16 or f32 (got \"%s\")\n",
                dtype);
        return 2;
    }
    if (bits != 0 && bits != 4 && bits != 8) {
        fprintf(stderr, "make_random_model: --bits must be 4 or 8 (got %d)\n", bits);
        return 2;
    }
    if (group != 32 && group != 64 && group != 128) {
        fprintf(stderr, "make_random_model: --group-size must be 32, 64 or 128\n");
        return 2;
    }
    p.bits = bits;
    p.group = group;
    rng_seed(seed);
    build_plan(&p, s);

    uint64_t total = 0, in_shard = 0;
    int n_shards = 1;
    for (int i = 0; i < p.n; i++) total += p.t[i].bytes;
    for (int i = 0; i < p.n; i++) {
        if (total > SHARD_LIMIT && in_shard > 0 && in_shard + p.t[i].bytes > SHARD_LIMIT) {
            n_shards++;
            in_shard = 0;
        }
        p.t[i].shard = n_shards - 1;
        in_shard += p.t[i].bytes;
    }

    if (path_exists(out) && !force) {
        fprintf(stderr, "make_random_model: %s already exists (--force replaces it)\n", out);
        return 1;
    }
    char *tmp = xasprintf("%s.tmp-%d", out, (int)getpid());
    if (mkdir(tmp, 0755) != 0) {
        fprintf(stderr, "make_random_model: %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    int rc = write_config(tmp, s, &p, torch_dtype);
    for (int sh = 0; sh < n_shards && rc == 0; sh++) {
        char name[64];
        if (n_shards == 1)
            snprintf(name, sizeof name, "model.safetensors");
        else
            snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", sh + 1, n_shards);
        char *path = path_join(tmp, name);
        rc = write_shard(path, &p, sh);
        free(path);
    }
    if (rc == 0 && n_shards > 1) rc = write_index(tmp, &p, n_shards);
    if (rc == 0 && path_exists(out)) {
        char *old = xasprintf("%s.old-%d", out, (int)getpid());
        rc = rename(out, old) == 0 ? 0 : -1;
        if (rc == 0) nftw(old, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(old);
    }
    if (rc == 0 && rename(tmp, out) != 0) rc = -1;
    if (rc != 0) {
        fprintf(stderr, "make_random_model: %s\n",
                kiln_last_error()[0] ? kiln_last_error() : strerror(errno));
        nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(tmp);
        return 1;
    }
    free(tmp);
    printf("%s: %s %s%s, %.2f GB in %d file(s)\n", out, s->name, dtype,
           bits ? (bits == 4 ? " 4-bit" : " 8-bit") : "", (double)total / 1e9, n_shards);
    return 0;
}
