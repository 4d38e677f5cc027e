/*
 * tok_added.c — added tokens (special and not): a byte trie that finds the longest added
 * token at a position, so that text can be cut around them before normalization and
 * pre-tokenization, as Hugging Face's AddedVocabulary does (leftmost, then longest match).
 */
#include "text/tok_internal.h"

#include <stdlib.h>
#include <string.h>

static int32_t new_node(added_trie *trie) {
    trie->token = xrealloc(trie->token, (trie->n_nodes + 1) * sizeof *trie->token);
    trie->token[trie->n_nodes] = -1;
    return (int32_t)trie->n_nodes++;
}

void added_trie_build(added_trie *trie, const added_token *tokens, size_t n, bool normalized) {
    memset(trie, 0, sizeof *trie);
    pairmap_init(&trie->edges, 64);
    new_node(trie); /* the root, node 0 */
    for (size_t i = 0; i < n; i++) {
        const added_token *tok = &tokens[i];
        if (tok->len == 0 || tok->normalized != normalized) continue;
        int32_t node = 0;
        for (size_t k = 0; k < tok->len; k++) {
            unsigned char c = (unsigned char)tok->content[k];
            int32_t child;
            if (node == 0) {
                child = trie->root[c];
                if (!child) child = trie->root[c] = new_node(trie);
            } else {
                const pair_slot *e = pairmap_get(&trie->edges, node, c);
                child = e ? e->id : -1;
                if (child < 0) {
                    child = new_node(trie);
                    pairmap_put(&trie->edges, node, c, 0, child);
                }
            }
            node = child;
        }
        if (trie->token[node] < 0) trie->token[node] = (int32_t)i; /* first wins on duplicates */
    }
}

void added_trie_free(added_trie *trie) {
    pairmap_free(&trie->edges);
    free(trie->token);
    memset(trie, 0, sizeof *trie);
}

int32_t added_trie_match(const added_trie *trie, const char *s, size_t n, size_t *match_len) {
    if (n == 0 || trie->n_nodes <= 1) return -1;
    int32_t node = trie->root[(unsigned char)s[0]];
    int32_t best = -1;
    for (size_t k = 1; node; k++) {
        if (trie->token[node] >= 0) {
            best = trie->token[node];
            *match_len = k;
        }
        if (k >= n) break;
        const pair_slot *e = pairmap_get(&trie->edges, node, (unsigned char)s[k]);
        node = e ? e->id : 0;
    }
    return best;
}
