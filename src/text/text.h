/*
 * text.h — the face of the text layer: tokenizers (Hugging Face tokenizer.json and llama2.c
 * tok.bin), the streaming detokenizer, and chat templates (a Jinja interpreter).
 * Everything between a request's text and token ids goes through here.
 */
#ifndef KILN_TEXT_H
#define KILN_TEXT_H

#include "base/base.h"

/* ---- tokenizers ---- */
typedef struct tokenizer tokenizer;

/* PATH is a model folder (tokenizer.json, tokenizer_config.json, generation_config.json) or a
 * llama2.c tokenizer file (tok512.bin). NULL + kiln_error on failure. */
tokenizer *tokenizer_load(const char *path);
void tokenizer_free(tokenizer *t);

/* Encodes UTF-8 text as Hugging Face's tokenizer(text) does; add_special adds BOS/EOS and the
 * post-processor's tokens (add_special_tokens=True). *ids is malloc'd. -1 + error on invalid
 * UTF-8 (naming the byte offset). */
int tokenizer_encode(const tokenizer *t, const char *text, size_t len, bool add_special,
                     int32_t **ids, size_t *n_ids);
/* Decodes ids to a malloc'd NUL-terminated string (skip_special: as skip_special_tokens). */
char *tokenizer_decode(const tokenizer *t, const int32_t *ids, size_t n, bool skip_special);

int tokenizer_vocab_size(const tokenizer *t);
int32_t tokenizer_bos(const tokenizer *t); /* -1 when none */
/* Stop tokens: eos_token plus generation_config.json's eos_token_id (int or list). */
size_t tokenizer_eos_ids(const tokenizer *t, const int32_t **ids);
bool tokenizer_is_special(const tokenizer *t, int32_t id);
/* Text of a token id as in the vocabulary (NULL if out of range). */
const char *tokenizer_token_text(const tokenizer *t, int32_t id);
int32_t tokenizer_token_id(const tokenizer *t, const char *text); /* -1 when unknown */

/* ---- streaming detokenizer: O(1) per token, emits only complete UTF-8 ---- */
typedef struct detokenizer detokenizer;
detokenizer *detokenizer_new(const tokenizer *t, bool skip_special);
void detokenizer_free(detokenizer *d);
/* Feeds one id; returns the newly completed text (owned by d, valid until the next call). */
const char *detokenizer_push(detokenizer *d, int32_t id);
/* Returns whatever is left (incomplete UTF-8 is flushed as U+FFFD, as Hugging Face does). */
const char *detokenizer_flush(detokenizer *d);

/* ---- chat templates ---- */
typedef struct chat_template chat_template;
/* From MODEL_DIR's tokenizer_config.json "chat_template" (string, or list of named templates)
 * or chat_template.jinja; override_path (may be NULL) is --chat-template FILE. */
chat_template *chat_template_load(const char *model_dir, const char *override_path);
/* A template given as source text; special tokens come from MODEL_DIR (may be NULL). */
chat_template *chat_template_parse(const char *source, const char *model_dir);
void chat_template_free(chat_template *ct);
/* Renders as transformers' apply_chat_template(messages, tools=..., tokenize=False,
 * add_generation_prompt=..., **kwargs). messages/tools/kwargs are jansson values (tools and
 * kwargs may be NULL). Returns a malloc'd string, or NULL + kiln_error (with template line). */
char *chat_template_render(const chat_template *ct, const json_t *messages, const json_t *tools,
                           bool add_generation_prompt, const json_t *kwargs);

#endif
