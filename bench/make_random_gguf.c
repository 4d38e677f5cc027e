/*
 * make_random_gguf.c — writes the twin of make_random_model's random Llama in llama.cpp's GGUF
 * format, so bench/llama_cpp_peer.mjs can run llama.cpp on the same shape, on the same machine,
 * in the same run as kiln: GGUF v3 (magic, key-values, tensor infos, data aligned to 32 bytes),
 * architecture "llama", tied embeddings, a placeholder SentencePiece vocabulary of the shape's
 * size (llama.cpp checks token ids against it and looks up the byte tokens <0xNN>).
 *
 *   make_random_gguf [--shape llama-1b|smollm-135m|tiny-long] [--type q4_0|q8_0|f16|bf16]
 *                    [--seed N] [--force] OUT.gguf
 *
 * Types follow what llama.cpp's llama-quantize makes of a tied model, so sizes match the
 * llama.cpp figures in docs/PERFORMANCE.md: q4_0 stores the embedding (also the output) as
 * Q6_K, q8_0 as Q8_0; norms are F32. Values are random but tame (|w| ~ 1/sqrt(fan-in), block
 * scales to match); they mean nothing, the speed of the arithmetic does not depend on them.
 * Block layouts are those of ggml's ggml-common.h: Q4_0 {f16 d; u8 qs[16]} per 32 weights,
 * Q8_0 {f16 d; i8 qs[32]} per 32, Q6_K {u8 ql[128], qh[64]; i8 scales[16]; f16 d} per 256.
 * Written to OUT.tmp and renamed at the end.
 */
#include "random_model.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

enum ggml_type { T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q8_0 = 8, T_Q6_K = 14, T_BF16 = 30 };
enum gguf_value { V_U32 = 4, V_I32 = 5, V_F32 = 6, V_STRING = 8, V_ARRAY = 9 };
#define ALIGN 32

typedef struct type_info {
    const char *name;
    enum ggml_type type;
    int block, bytes; /* weights per block, bytes per block */
    int file_type;    /* general.file_type (llama_ftype) of a model mostly of this type */
} type_info;

static const type_info types[] = {
    {"f32", T_F32, 1, 4, 0},     {"f16", T_F16, 1, 2, 1},        {"q4_0", T_Q4_0, 32, 18, 2},
    {"q8_0", T_Q8_0, 32, 34, 7}, {"q6_k", T_Q6_K, 256, 210, 18}, {"bf16", T_BF16, 1, 2, 32},
};

static const type_info *type_of(enum ggml_type t) {
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (types[i].type == t) return &types[i];
    return NULL;
}

/* A growable byte buffer for the header, written in one piece once its counts are known. */
typedef struct buf {
    uint8_t *p;
    size_t len, cap;
} buf;

static void put(buf *b, const void *v, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) {
            fprintf(stderr, "make_random_gguf: out of memory\n");
            exit(1);
        }
    }
    memcpy(b->p + b->len, v, n);
    b->len += n;
}
static void put_u32(buf *b, uint32_t v) {
    put(b, &v, 4);
}
static void put_u64(buf *b, uint64_t v) {
    put(b, &v, 8);
}
static void put_str(buf *b, const char *s) {
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}

typedef struct header {
    buf kv, info;
    uint64_t n_kv, n_tensors, data_size;
} header;

static void kv_key(header *h, const char *key, enum gguf_value v) {
    put_str(&h->kv, key);
    put_u32(&h->kv, v);
    h->n_kv++;
}
static void kv_u32(header *h, const char *key, uint32_t v) {
    kv_key(h, key, V_U32);
    put_u32(&h->kv, v);
}
static void kv_f32(header *h, const char *key, float v) {
    kv_key(h, key, V_F32);
    put(&h->kv, &v, 4);
}
static void kv_str(header *h, const char *key, const char *v) {
    kv_key(h, key, V_STRING);
    put_str(&h->kv, v);
}

/* The placeholder vocabulary: <unk>, <s>, </s>, the 256 byte tokens, then "▁t<i>". */
static void vocab(header *h, int n) {
    kv_str(h, "tokenizer.ggml.model", "llama");
    kv_key(h, "tokenizer.ggml.tokens", V_ARRAY);
    put_u32(&h->kv, V_STRING);
    put_u64(&h->kv, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        char s[32];
        if (i < 3)
            snprintf(s, sizeof s, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
        else if (i < 259)
            snprintf(s, sizeof s, "<0x%02X>", i - 3);
        else
            snprintf(s, sizeof s, "\xe2\x96\x81t%d", i);
        put_str(&h->kv, s);
    }
    kv_key(h, "tokenizer.ggml.scores", V_ARRAY);
    put_u32(&h->kv, V_F32);
    put_u64(&h->kv, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        float score = -(float)i;
        put(&h->kv, &score, 4);
    }
    kv_key(h, "tokenizer.ggml.token_type", V_ARRAY);
    put_u32(&h->kv, V_I32);
    put_u64(&h->kv, (uint64_t)n);
    for (int i = 0; i < n; i++) /* unknown 2, control 3, byte 6, normal 1 */
        put_u32(&h->kv, i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1);
    kv_u32(h, "tokenizer.ggml.unknown_token_id", 0);
    kv_u32(h, "tokenizer.ggml.bos_token_id", 1);
    kv_u32(h, "tokenizer.ggml.eos_token_id", 2);
}

typedef struct tensor {
    char name[64];
    enum ggml_type type;
    int64_t ne0, ne1; /* ne0: the row length (fan-in), contiguous; ne1: rows (1 for a vector) */
} tensor;

static uint64_t tensor_bytes(const tensor *t) {
    const type_info *ti = type_of(t->type);
    return (uint64_t)(t->ne0 / ti->block) * (uint64_t)ti->bytes * (uint64_t)t->ne1;
}

static int plan(tensor *t, const shape *s, enum ggml_type wt) {
    int n = 0;
    int64_t q = (int64_t)s->heads * s->head_dim, kv = (int64_t)s->kv_heads * s->head_dim;
    /* llama-quantize keeps a tied embedding (it is also the output) at Q6_K under Q4_0 */
    enum ggml_type embed = wt == T_Q4_0 && s->dim % 256 == 0 ? T_Q6_K : wt;
    t[n++] = (tensor){"token_embd.weight", embed, s->dim, s->vocab};
    for (int l = 0; l < s->layers; l++) {
#define T(NAME, TYPE, NE0, NE1)                                                                    \
    do {                                                                                           \
        t[n] = (tensor){"", TYPE, NE0, NE1};                                                       \
        snprintf(t[n].name, sizeof t[n].name, "blk.%d.%s.weight", l, NAME);                        \
        n++;                                                                                       \
    } while (0)
        T("attn_norm", T_F32, s->dim, 1);
        T("attn_q", wt, s->dim, q);
        T("attn_k", wt, s->dim, kv);
        T("attn_v", wt, s->dim, kv);
        T("attn_output", wt, q, s->dim);
        T("ffn_norm", T_F32, s->dim, 1);
        T("ffn_gate", wt, s->dim, s->ffn);
        T("ffn_up", wt, s->dim, s->ffn);
        T("ffn_down", wt, s->ffn, s->dim);
#undef T
    }
    t[n++] = (tensor){"output_norm.weight", T_F32, s->dim, 1};
    return n;
}

static void metadata(header *h, const shape *s, const type_info *wt) {
    kv_str(h, "general.architecture", "llama");
    kv_str(h, "general.name", s->name);
    kv_u32(h, "general.file_type", (uint32_t)wt->file_type);
    kv_u32(h, "llama.context_length", (uint32_t)s->ctx);
    kv_u32(h, "llama.embedding_length", (uint32_t)s->dim);
    kv_u32(h, "llama.block_count", (uint32_t)s->layers);
    kv_u32(h, "llama.feed_forward_length", (uint32_t)s->ffn);
    kv_u32(h, "llama.attention.head_count", (uint32_t)s->heads);
    kv_u32(h, "llama.attention.head_count_kv", (uint32_t)s->kv_heads);
    kv_u32(h, "llama.rope.dimension_count", (uint32_t)s->head_dim);
    kv_f32(h, "llama.rope.freq_base", (float)s->rope_theta);
    kv_f32(h, "llama.attention.layer_norm_rms_epsilon", (float)s->norm_eps);
    kv_u32(h, "llama.vocab_size", (uint32_t)s->vocab);
    vocab(h, s->vocab);
}

static void tensor_info(header *h, const tensor *t) {
    put_str(&h->info, t->name);
    bool vector = t->ne1 == 1;
    put_u32(&h->info, vector ? 1 : 2);
    put_u64(&h->info, (uint64_t)t->ne0);
    if (!vector) put_u64(&h->info, (uint64_t)t->ne1);
    put_u32(&h->info, t->type);
    put_u64(&h->info, h->data_size);
    h->data_size = (h->data_size + tensor_bytes(t) + ALIGN - 1) / ALIGN * ALIGN;
    h->n_tensors++;
}

/* One row of t (ne0 weights) in its type, into out. */
static void fill_row(uint8_t *out, const tensor *t) {
    float amp = 1.0f / sqrtf((float)t->ne0);
    int64_t blocks = t->ne0 / type_of(t->type)->block;
    switch (t->type) {
    case T_F32:
        for (int64_t i = 0; i < t->ne0; i++) ((float *)out)[i] = 1.0f; /* norm weights */
        return;
    case T_F16:
    case T_BF16:
        fill_half((uint16_t *)out, (size_t)t->ne0, amp, t->type == T_F16);
        return;
    default:
        break;
    }
    /* Quantized: random codes; block scales that map them onto about ±amp. */
    const type_info *ti = type_of(t->type);
    for (int64_t b = 0; b < blocks; b++) {
        uint8_t *blk = out + b * ti->bytes;
        for (int i = 0; i < ti->bytes; i += 8) {
            uint64_t r = rng_next();
            memcpy(blk + i, &r, (size_t)(ti->bytes - i < 8 ? ti->bytes - i : 8));
        }
        uint16_t d;
        if (t->type == T_Q6_K) {
            for (int i = 0; i < 16; i++) blk[192 + i] = (uint8_t)(16 + blk[192 + i] % 32);
            d = f32_to_f16(amp / (32.0f * 32.0f));
            memcpy(blk + 208, &d, 2);
        } else {
            d = f32_to_f16(t->type == T_Q4_0 ? amp / 8.0f : amp / 127.0f);
            memcpy(blk, &d, 2);
        }
    }
}

static int write_model(const char *path, const shape *s, const type_info *wt) {
    static tensor t[1024];
    int n = plan(t, s, wt->type);
    header h = {0};
    metadata(&h, s, wt);
    for (int i = 0; i < n; i++) tensor_info(&h, &t[i]);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        return -1;
    }
    buf head = {0};
    put_u32(&head, 0x46554747u); /* "GGUF" */
    put_u32(&head, 3);
    put_u64(&head, h.n_tensors);
    put_u64(&head, h.n_kv);
    put(&head, h.kv.p, h.kv.len);
    put(&head, h.info.p, h.info.len);
    static const uint8_t zeros[ALIGN];
    put(&head, zeros, (ALIGN - head.len % ALIGN) % ALIGN);
    bool ok = fwrite(head.p, 1, head.len, f) == head.len;
    uint8_t *row = NULL;
    size_t row_cap = 0;
    for (int i = 0; i < n && ok; i++) {
        size_t row_bytes = (size_t)(tensor_bytes(&t[i]) / (uint64_t)t[i].ne1);
        if (row_bytes > row_cap) row = realloc(row, row_cap = row_bytes);
        if (!row) break;
        for (int64_t r = 0; r < t[i].ne1 && ok; r++) {
            fill_row(row, &t[i]);
            ok = fwrite(row, 1, row_bytes, f) == row_bytes;
        }
        size_t pad = (size_t)((ALIGN - tensor_bytes(&t[i]) % ALIGN) % ALIGN);
        if (ok && pad) ok = fwrite(zeros, 1, pad, f) == pad;
    }
    ok = ok && row && fclose(f) == 0;
    free(row);
    free(head.p);
    free(h.kv.p);
    free(h.info.p);
    if (!ok) perror(path);
    return ok ? 0 : -1;
}

int main(int argc, char **argv) {
    const char *usage = "make_random_gguf [--shape llama-1b|smollm-135m|tiny-long] "
                        "[--type q4_0|q8_0|f16|bf16] [--seed N] [--force] OUT.gguf";
    const char *shape_name = "llama-1b", *type_name = "q4_0";
    uint64_t seed = 1;
    bool force = false;
    static const struct option opts[] = {{"shape", 1, 0, 's'}, {"type", 1, 0, 't'},
                                         {"seed", 1, 0, 'r'},  {"force", 0, 0, 'f'},
                                         {"help", 0, 0, 'h'},  {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        if (c == 's')
            shape_name = optarg;
        else if (c == 't')
            type_name = optarg;
        else if (c == 'r')
            seed = strtoull(optarg, NULL, 0);
        else if (c == 'f')
            force = true;
        else
            return usage_exit(usage, c == 'h' ? 0 : 2);
    }
    if (optind != argc - 1) return usage_exit(usage, 2);
    const shape *s = shape_named("make_random_gguf", shape_name);
    if (!s) return 2;
    const type_info *wt = NULL;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(types[i].name, type_name) && types[i].block <= 32) wt = &types[i];
    if (!wt || wt->type == T_F32) {
        fprintf(stderr, "make_random_gguf: unknown type \"%s\" (q4_0, q8_0, f16, bf16)\n",
                type_name);
        return 2;
    }
    const char *out = argv[optind];
    if (!force && access(out, F_OK) == 0) {
        fprintf(stderr, "make_random_gguf: %s exists (--force replaces it)\n", out);
        return 1;
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    rng_seed(seed);
    if (write_model(tmp, s, wt) < 0 || rename(tmp, out) != 0) {
        unlink(tmp);
        fprintf(stderr, "make_random_gguf: could not write %s\n", out);
        return 1;
    }
    printf("%s: %s %s\n", out, s->name, wt->name);
    return 0;
}
