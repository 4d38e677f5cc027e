/*
 * test_model_load.c — model files from strangers: every malformed, truncated, mis-typed or
 * hostile file must fail with one clear line naming the file and tensor, never crash. A tiny
 * valid model is written first, then broken one way at a time.
 */
#include "check.h"
#include "model/model.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

/* Tensors of a tiny llama: dim 8, 1 layer, 2 heads of 4, 1 KV head, ffn 16, vocab 16. */
static const struct {
    const char *name;
    int64_t rows, cols; /* cols 0: a vector */
} tiny[] = {
    {"model.embed_tokens.weight", 16, 8},
    {"model.norm.weight", 8, 0},
    {"lm_head.weight", 16, 8},
    {"model.layers.0.input_layernorm.weight", 8, 0},
    {"model.layers.0.post_attention_layernorm.weight", 8, 0},
    {"model.layers.0.self_attn.q_proj.weight", 8, 8},
    {"model.layers.0.self_attn.k_proj.weight", 4, 8},
    {"model.layers.0.self_attn.v_proj.weight", 4, 8},
    {"model.layers.0.self_attn.o_proj.weight", 8, 8},
    {"model.layers.0.mlp.gate_proj.weight", 16, 8},
    {"model.layers.0.mlp.up_proj.weight", 16, 8},
    {"model.layers.0.mlp.down_proj.weight", 8, 16},
};

static const char *good_config =
    "{\"model_type\": \"llama\", \"hidden_size\": 8, \"intermediate_size\": 16, "
    "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"num_key_value_heads\": 1, "
    "\"vocab_size\": 16, \"rms_norm_eps\": 1e-5, \"tie_word_embeddings\": false}";

static void write_bytes(const char *name, const void *data, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, n, f);
    fclose(f);
}

static void write_text(const char *name, const char *text) {
    write_bytes(name, text, strlen(text));
}

/* A safetensors file from a header text and `data_bytes` bytes of 0.01f values. */
static void write_safetensors(const char *name, const char *header, size_t data_bytes) {
    size_t hlen = strlen(header);
    size_t pad = (8 - hlen % 8) % 8;
    size_t total = 8 + hlen + pad + data_bytes;
    uint8_t *buf = calloc(1, total);
    uint64_t h = hlen + pad;
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(h >> (8 * i));
    memcpy(buf + 8, header, hlen);
    memset(buf + 8 + hlen, ' ', pad);
    float v = 0.01f;
    for (size_t i = 0; i + 4 <= data_bytes; i += 4) memcpy(buf + 8 + h + i, &v, 4);
    write_bytes(name, buf, total);
    free(buf);
}

/* The tiny model's header; `skip` omits one tensor, `bad_shape` gives one a wrong shape. */
static size_t tiny_header(char *out, size_t cap, const char *skip, const char *bad_shape) {
    size_t off = 0, pos = 0;
    off += (size_t)snprintf(out + off, cap - off, "{");
    for (size_t i = 0; i < ARRAY_LEN(tiny); i++) {
        if (skip && !strcmp(skip, tiny[i].name)) continue;
        int64_t rows = tiny[i].rows, cols = tiny[i].cols;
        if (bad_shape && !strcmp(bad_shape, tiny[i].name)) rows += 1;
        size_t bytes = (size_t)(rows * (cols ? cols : 1)) * 4;
        if (cols)
            off += (size_t)snprintf(out + off, cap - off,
                                    "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld,%lld],"
                                    "\"data_offsets\":[%zu,%zu]}",
                                    off > 1 ? "," : "", tiny[i].name, (long long)rows,
                                    (long long)cols, pos, pos + bytes);
        else
            off += (size_t)snprintf(out + off, cap - off,
                                    "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld],"
                                    "\"data_offsets\":[%zu,%zu]}",
                                    off > 1 ? "," : "", tiny[i].name, (long long)rows, pos,
                                    pos + bytes);
        pos += bytes;
    }
    snprintf(out + off, cap - off, "}");
    return pos;
}

static void fresh_model(const char *skip, const char *bad_shape) {
    char header[8192];
    size_t data = tiny_header(header, sizeof header, skip, bad_shape);
    unlink("model.safetensors.index.json");
    write_text("config.json", good_config);
    write_safetensors("model.safetensors", header, data);
}

/* Loading must fail with an error containing each fragment. */
static void expect_load_error(const char *path, const char *frag1, const char *frag2) {
    model *m = model_load(path);
    CHECK_MSG(m == NULL, "loading %s succeeded, expected an error with \"%s\"", path, frag1);
    model_free(m);
    if (m) return;
    CHECK_CONTAINS(kiln_last_error(), frag1);
    if (frag2) CHECK_CONTAINS(kiln_last_error(), frag2);
}

static void test_valid_tiny_model_loads(void) {
    fresh_model(NULL, NULL);
    model *m = model_load(dir);
    CHECK_MSG(m != NULL, "%s", kiln_last_error());
    if (m) CHECK(m->cfg.n_kv_heads == 1 && m->cfg.head_dim == 4 && !m->cfg.tie_embeddings);
    model_free(m);
}

static void test_missing_tensor(void) {
    fresh_model("model.layers.0.mlp.up_proj.weight", NULL);
    expect_load_error(dir, "tensor model.layers.0.mlp.up_proj.weight is missing", NULL);
}

static void test_shape_disagrees_with_config(void) {
    fresh_model(NULL, "model.layers.0.self_attn.k_proj.weight");
    expect_load_error(dir, "model.safetensors: tensor model.layers.0.self_attn.k_proj.weight",
                      "expected [4, 8]");
}

static void test_unsupported_model_type(void) {
    fresh_model(NULL, NULL);
    write_text("config.json", "{\"model_type\": \"mamba\", \"hidden_size\": 8}");
    expect_load_error(dir, "model type \"mamba\" is not supported", "supported: llama");
}

static void test_config_not_json(void) {
    fresh_model(NULL, NULL);
    write_text("config.json", "{\"model_type\": \"llama\",\n \"hidden_size\": }");
    expect_load_error(dir, "config.json:2:", NULL);
}

static void test_config_wrong_type(void) {
    fresh_model(NULL, NULL);
    write_text("config.json", "{\"model_type\": \"llama\", \"hidden_size\": \"8\"}");
    expect_load_error(dir, "\"hidden_size\" must be an integer", NULL);
}

static void test_config_missing_key(void) {
    fresh_model(NULL, NULL);
    write_text("config.json", "{\"model_type\": \"qwen3\", \"hidden_size\": 8}");
    expect_load_error(dir, "\"intermediate_size\" is missing", NULL);
}

static void test_config_bad_heads(void) {
    fresh_model(NULL, NULL);
    write_text("config.json",
               "{\"model_type\": \"llama\", \"hidden_size\": 8, \"intermediate_size\": 16, "
               "\"num_hidden_layers\": 1, \"num_attention_heads\": 3, \"num_key_value_heads\": 2, "
               "\"vocab_size\": 16}");
    expect_load_error(dir, "must be a multiple of", NULL);
}

static void test_empty_safetensors(void) {
    fresh_model(NULL, NULL);
    write_bytes("model.safetensors", "", 0);
    expect_load_error(dir, "model.safetensors: too short", NULL);
}

static void test_header_length_past_end(void) {
    fresh_model(NULL, NULL);
    uint8_t buf[16] = {0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, '{', '}'};
    write_bytes("model.safetensors", buf, sizeof buf);
    expect_load_error(dir, "header length", "runs past the end");
}

static void test_header_not_json(void) {
    fresh_model(NULL, NULL);
    write_safetensors("model.safetensors", "{\"a\": [1, 2", 0);
    expect_load_error(dir, "model.safetensors: header is not a JSON object", NULL);
}

static void test_unknown_dtype(void) {
    fresh_model(NULL, NULL);
    write_safetensors("model.safetensors",
                      "{\"x\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4);
    expect_load_error(dir, "tensor x: dtype F8_E4M3 is not supported", NULL);
}

static void test_offsets_out_of_bounds(void) {
    fresh_model(NULL, NULL);
    write_safetensors("model.safetensors",
                      "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,4096]}}", 16);
    expect_load_error(dir, "tensor x: data_offsets out of bounds", NULL);
}

static void test_size_disagrees_with_shape(void) {
    fresh_model(NULL, NULL);
    write_safetensors("model.safetensors",
                      "{\"x\":{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[0,16]}}", 16);
    expect_load_error(dir, "tensor x: 16 bytes of data for a shape that needs 20", NULL);
}

static void test_overlapping_tensors(void) {
    fresh_model(NULL, NULL);
    write_safetensors("model.safetensors",
                      "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
                      24);
    expect_load_error(dir, "overlap", NULL);
}

static void test_negative_and_huge_shapes(void) {
    fresh_model(NULL, NULL);
    write_safetensors("model.safetensors",
                      "{\"x\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", 16);
    expect_load_error(dir, "tensor x: bad shape", NULL);
    write_safetensors("model.safetensors",
                      "{\"x\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776,"
                      "1099511627776],\"data_offsets\":[0,16]}}",
                      16);
    expect_load_error(dir, "tensor x: shape too large", NULL);
}

static void test_duplicate_keys(void) {
    fresh_model(NULL, NULL);
    write_safetensors("model.safetensors",
                      "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                      8);
    expect_load_error(dir, "header is not a JSON object", "duplicate");
}

static void test_wrong_dtype_for_weight(void) {
    fresh_model(NULL, NULL);
    char header[8192];
    size_t data = tiny_header(header, sizeof header, NULL, NULL);
    /* make the first tensor (embed) I32: same byte size, wrong type */
    char *p = strstr(header, "\"F32\"");
    memcpy(p, "\"I32\"", 5);
    write_safetensors("model.safetensors", header, data);
    expect_load_error(dir, "tensor model.embed_tokens.weight has dtype I32", NULL);
}

static void test_random_garbage(void) {
    fresh_model(NULL, NULL);
    uint8_t buf[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)((x = x * 1103515245 + 12345) >> 16);
    write_bytes("model.safetensors", buf, sizeof buf);
    expect_load_error(dir, "model.safetensors", NULL);
    write_bytes("garbage.bin", buf, sizeof buf);
    char path[512];
    snprintf(path, sizeof path, "%s/garbage.bin", dir);
    expect_load_error(path, "garbage.bin", NULL);
}

static void test_shard_index_names_missing_file(void) {
    fresh_model(NULL, NULL);
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    unlink(path);
    write_text("model.safetensors.index.json",
               "{\"weight_map\": {\"model.norm.weight\": \"model-00001-of-00002.safetensors\"}}");
    expect_load_error(dir, "model-00001-of-00002.safetensors", "No such file");
    write_text("model.safetensors.index.json",
               "{\"weight_map\": {\"model.norm.weight\": \"../../etc/passwd\"}}");
    expect_load_error(dir, "must be a file name in the folder", NULL);
}

static void test_llama2c_truncated(void) {
    const char *shared = getenv("SHARED");
    char src[512], dst[512];
    snprintf(src, sizeof src, "%s/models/stories260K/stories260K.bin",
             shared ? shared : "../shared");
    FILE *f = fopen(src, "rb");
    CHECK_MSG(f != NULL, "cannot open %s", src);
    if (!f) return;
    uint8_t *buf = malloc(1 << 20);
    size_t n = fread(buf, 1, 1 << 20, f);
    fclose(f);
    write_bytes("trunc.bin", buf, n - 100);
    snprintf(dst, sizeof dst, "%s/trunc.bin", dir);
    expect_load_error(dst, "trunc.bin: file is", "truncated");
    int32_t bad[7] = {64, 172, 5, 8, -4, 512, 512};
    write_bytes("neg.bin", bad, sizeof bad);
    snprintf(dst, sizeof dst, "%s/neg.bin", dir);
    expect_load_error(dst, "not a llama2.c checkpoint", NULL);
    write_bytes("short.bin", buf, 10);
    snprintf(dst, sizeof dst, "%s/short.bin", dir);
    expect_load_error(dst, "too short", NULL);
    free(buf);
}

static void test_no_such_path(void) {
    expect_load_error("/nonexistent/model", "no such model", NULL);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/kiln-test-load-%d", (int)getpid());
    mkdir(dir, 0755);
    if (chdir(dir) != 0) return 1;
    RUN(test_valid_tiny_model_loads);
    RUN(test_missing_tensor);
    RUN(test_shape_disagrees_with_config);
    RUN(test_unsupported_model_type);
    RUN(test_config_not_json);
    RUN(test_config_wrong_type);
    RUN(test_config_missing_key);
    RUN(test_config_bad_heads);
    RUN(test_empty_safetensors);
    RUN(test_header_length_past_end);
    RUN(test_header_not_json);
    RUN(test_unknown_dtype);
    RUN(test_offsets_out_of_bounds);
    RUN(test_size_disagrees_with_shape);
    RUN(test_overlapping_tensors);
    RUN(test_negative_and_huge_shapes);
    RUN(test_duplicate_keys);
    RUN(test_wrong_dtype_for_weight);
    RUN(test_random_garbage);
    RUN(test_shard_index_names_missing_file);
    RUN(test_llama2c_truncated);
    RUN(test_no_such_path);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    return CHECK_DONE();
}
