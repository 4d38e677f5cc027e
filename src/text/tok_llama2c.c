/*
 * tok_llama2c.c — llama2.c's tokenizer file (tok512.bin: int32 max_token_length, then per
 * token a float32 score, an int32 length and the bytes) with run.c's encode: a dummy-prefix
 * space, one symbol per UTF-8 character (bytes + 3 for characters not in the vocabulary),
 * then repeatedly the adjacent pair whose joined text has the highest score, leftmost first.
 * The pairs are precomputed as a merge table so that the BPE engine in bpe.c does the work.
 */
#include "text/tok_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct scored {
    float score;
    int32_t id;
} scored;

static int by_score_desc(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->id - y->id;
}

/* Every token that is the join of two tokens becomes a merge ranked by its score. */
static void build_merges(tokenizer *t, const float *scores) {
    scored *order = xmalloc((size_t)t->n_vocab * sizeof *order);
    for (int32_t i = 0; i < t->n_vocab; i++) order[i] = (scored){scores[i], i};
    qsort(order, (size_t)t->n_vocab, sizeof *order, by_score_desc);
    pairmap_init(&t->merges, (size_t)t->n_vocab);
    int32_t rank = 0;
    for (int32_t k = 0; k < t->n_vocab; k++) {
        if (k > 0 && order[k].score != order[k - 1].score) rank++; /* equal scores: leftmost */
        int32_t id = order[k].id;
        const char *s = t->text[id];
        for (uint32_t cut = 1; cut < t->text_len[id]; cut++) {
            int32_t a = strmap_get(&t->vocab, s, cut);
            int32_t b = strmap_get(&t->vocab, s + cut, t->text_len[id] - cut);
            if (a < 0 || b < 0 || pairmap_get(&t->merges, a, b)) continue;
            pairmap_put(&t->merges, a, b, rank, id);
        }
    }
    free(order);
}

tokenizer *tokenizer_load_llama2c(const char *path) {
    char *data;
    size_t len;
    if (read_file(path, &data, &len) < 0) return NULL;
    if (len < 4) {
        kiln_error("%s: too short for a llama2.c tokenizer", path);
        free(data);
        return NULL;
    }
    tokenizer *t = tokenizer_alloc();
    t->llama2c = true;
    float *scores = NULL;
    size_t off = 4, n = 0;
    while (off < len) {
        float score;
        int32_t tlen;
        if (len - off < 8) goto truncated;
        memcpy(&score, data + off, 4);
        memcpy(&tlen, data + off + 4, 4);
        off += 8;
        if (tlen < 0 || (size_t)tlen > len - off) goto truncated;
        tokenizer_set_vocab_size(t, (int32_t)n + 1);
        t->text[n] = xmalloc((size_t)tlen + 1);
        memcpy(t->text[n], data + off, (size_t)tlen);
        t->text[n][tlen] = 0;
        t->text_len[n] = (uint32_t)tlen;
        scores = xrealloc(scores, (n + 1) * sizeof *scores);
        scores[n] = score;
        off += (size_t)tlen;
        n++;
    }
    free(data);
    if (n < 3) {
        kiln_error("%s: a llama2.c tokenizer needs at least <unk>, <s> and </s>", path);
        free(scores);
        tokenizer_free(t);
        return NULL;
    }
    strmap_init(&t->vocab, n);
    for (int32_t i = (int32_t)n - 1; i >= 0; i--) /* on duplicates the lowest id wins */
        strmap_put(&t->vocab, t->text[i], t->text_len[i], i);
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_ids[b] = strmap_get(&t->vocab, name, 6);
        if (t->byte_ids[b] < 0 && b + 3 < (int)n) t->byte_ids[b] = b + 3; /* run.c's rule */
    }
    build_merges(t, scores);
    free(scores);
    t->unk_id = 0;
    t->bos = 1;
    ivec_push(&t->eos, 2);
    for (int i = 0; i < 3; i++) t->flags[i] |= TOK_SPECIAL;
    return t;

truncated:
    kiln_error("%s: truncated llama2.c tokenizer (token %zu at byte %zu)", path, n, off);
    free(data);
    free(scores);
    tokenizer_free(t);
    return NULL;
}

int llama2c_encode(const tokenizer *t, const char *text, size_t len, ivec *out) {
    if (len == 0) return 0;
    ivec ids = {0};
    int32_t space = strmap_get(&t->vocab, " ", 1);
    if (space >= 0) ivec_push(&ids, space); /* the dummy prefix */
    for (size_t i = 0; i < len;) {
        size_t n = (size_t)utf8_len((unsigned char)text[i]);
        int32_t id = strmap_get(&t->vocab, text + i, n);
        if (id >= 0) {
            ivec_push(&ids, id);
        } else {
            for (size_t k = 0; k < n; k++) {
                int32_t b = t->byte_ids[(unsigned char)text[i + k]];
                ivec_push(&ids, b >= 0 ? b : t->unk_id);
            }
        }
        i += n;
    }
    encode_state st;
    encode_state_init(&st, t, out);
    bpe_merge(&st, &t->merges, ids.p, &ids.n);
    encode_state_free(&st);
    ivec_append(out, ids.p, ids.n);
    free(ids.p);
    return 0;
}

char *llama2c_decode(const tokenizer *t, const int32_t *ids, size_t n, bool skip_special) {
    detokenizer *d = detokenizer_new(t, skip_special);
    tbuf text = {0};
    for (size_t i = 0; i < n; i++) {
        const char *s = detokenizer_push(d, ids[i]);
        tbuf_put(&text, s, strlen(s));
    }
    const char *s = detokenizer_flush(d);
    tbuf_put(&text, s, strlen(s));
    detokenizer_free(d);
    return text.p;
}
