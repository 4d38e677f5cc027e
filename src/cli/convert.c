/*
 * convert.c — `kiln convert SRC OUT --bits B [--group-size G] [--dtype D] [--recipe R]
 * [--dequantize] [--force] [--quiet]`: a Hugging Face float model folder to the MLX quantized
 * layout (or back to float with --dequantize). The work is in src/convert/.
 */
#include "cli/cli.h"
#include "convert/convert.h"

#include <getopt.h>
#include <stdlib.h>

static const char *usage =
    "kiln convert SRC OUT --bits 2|3|4|5|6|8 [--group-size 32|64|128]\n"
    "       [--dtype float16|bfloat16|float32] [--recipe mixed_2_6|mixed_3_4|mixed_3_5|mixed_3_6|"
    "mixed_3_8|mixed_4_6|mixed_4_8]\n"
    "       [--dequantize] [--force] [--quiet]";

int cmd_convert(int argc, char **argv) {
    static const struct option opts[] = {
        {"bits", required_argument, 0, 'b'},  {"group-size", required_argument, 0, 'g'},
        {"dtype", required_argument, 0, 'd'}, {"recipe", required_argument, 0, 'r'},
        {"dequantize", no_argument, 0, 'D'},  {"force", no_argument, 0, 'f'},
        {"quiet", no_argument, 0, 'q'},       {"max-shard-bytes", required_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    convert_opts o = {.group_size = 64};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if ((c == 'b' && cli_parse_int("--bits", optarg, 1, 16, &o.bits) < 0) ||
            (c == 'g' && cli_parse_int("--group-size", optarg, 1, 1 << 20, &o.group_size) < 0))
            return cli_fail();
        if (c == 'd') o.dtype = optarg;
        if (c == 'r') o.recipe = optarg;
        if (c == 'D') o.dequantize = true;
        if (c == 'f') o.force = true;
        if (c == 'q') o.quiet = true;
        if (c == 'S') o.max_shard_bytes = strtoull(optarg, NULL, 10); /* for tests of sharding */
        if (c == 'h' || c == '?') return cli_usage(usage);
    }
    if (optind != argc - 2) return cli_usage(usage);
    if (!o.bits && !o.recipe && !o.dequantize) {
        kiln_error("--bits (or --recipe, or --dequantize) is required");
        return cli_fail();
    }
    if (o.dequantize && (o.bits || o.recipe)) {
        kiln_error("--dequantize takes no --bits or --recipe");
        return cli_fail();
    }
    o.src = argv[optind];
    o.out = argv[optind + 1];
    return convert_model(&o) == 0 ? 0 : cli_fail();
}
