/*
 * main.c — `kiln VERB ...`: finds the verb and hands it the rest of the command line.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

static const struct verb {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} verbs[] = {
    {"run", cmd_run, "generate text from a prompt"},
    {"serve", cmd_serve, "serve a model over an OpenAI-compatible HTTP API"},
    {"deploy", cmd_deploy, "manage model deployments as services"},
    {"convert", cmd_convert, "quantize a Hugging Face model into the MLX layout"},
    {"logits", cmd_logits, "write the logits of a token sequence (float32)"},
    {"tokenize", cmd_tokenize, "print the token ids of a text"},
    {"template", cmd_template, "render a chat template"},
    {"bench", cmd_bench, "measure prompt processing and generation speed"},
};

static void usage(FILE *f) {
    fprintf(f, "kiln %s — local LLM serving\n\nusage: kiln VERB [ARGS]\n\n", KILN_VERSION);
    for (size_t i = 0; i < ARRAY_LEN(verbs); i++)
        fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].help);
    fprintf(f, "\n`kiln VERB --help` describes each verb.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("kiln %s\n", KILN_VERSION);
        return 0;
    }
    for (size_t i = 0; i < ARRAY_LEN(verbs); i++)
        if (!strcmp(argv[1], verbs[i].name)) return verbs[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "kiln: unknown verb \"%s\" (try kiln --help)\n", argv[1]);
    return 2;
}

int cli_fail(void) {
    fprintf(stderr, "kiln: %s\n", kiln_last_error());
    return 1;
}

int cli_usage(const char *text) {
    fprintf(stderr, "usage: %s\n", text);
    return 2;
}
