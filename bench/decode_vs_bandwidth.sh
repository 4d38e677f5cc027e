#!/usr/bin/env bash
# bench/decode_vs_bandwidth.sh — relates kiln's decode and prefill speed to what the machine
# can do, measured in the same run: builds kiln and the probes, makes a random-weight model of
# a real shape (kept in build/models/), then for each round reads memory as kiln holds the weights
# (bench/bandwidth: the mmapped file for quantized ones, anonymous huge pages for dense ones in
# panel order), runs `kiln bench` for decode (tg),
# reads again, runs prefill (pp). Shared hosts drift ±20% minute to minute, so each decode is
# compared with the bandwidth measured right around it, and medians over rounds are reported.
#
#   bench/decode_vs_bandwidth.sh [--shape llama-1b|smollm-135m|tiny-long] [--dtype bf16|f16|f32]
#                                [--bits 4|8] [-p 512] [-n 128] [-t THREADS] [--rounds 3]
#                                [--peer]
#
# Prints one line per round and a summary with: decode tokens/s, bytes of weights per token,
# achieved GB/s and its ratio to the read bandwidth (target >= 0.80 for BF16 on llama-1b); the
# same ratio with each decoded token followed by a plain read of the same weight bytes where
# kiln holds them (`kiln bench --vs-read`: tg/alt, the median over token / read pairs, which
# the host's drift between rounds does not reach),
# prefill tokens/s and its ratio to decode (target >= 10), and the prefill ceiling set by the
# measured FMA rate and the FLOPs a prefill token needs (2 per layer weight, attention, and
# lm_head once per prompt), so a compute-bound miss shows as such.
# With --bits 4|8 (MLX group 64, llama-1b) the targets are those of quantized weights: decode at
# >= 0.85 of the read bandwidth, and prefill at >= 1.3x llama.cpp's Q4_0 / Q8_0 pp512 on this
# kind of machine (the issue's figures, printed next to ours).
# With --peer, each round also runs llama.cpp itself on this machine (node-llama-cpp's prebuilt
# CPU build, installed by `make bench-peer`; bench/llama_cpp_peer.mjs) on the model's GGUF twin
# (bench/make_random_gguf: Q4_0 / Q8_0 for --bits 4 / 8, else the same float type), and the
# prefill and decode ratios to it are reported from the same run.
set -euo pipefail
cd "$(dirname "$0")/.."

shape=llama-1b dtype=bf16 bits="" p=512 n=128 threads="" rounds=3 peer=""
while [ $# -gt 0 ]; do
    case "$1" in
    --shape) shape=$2; shift 2 ;;
    --dtype) dtype=$2; shift 2 ;;
    --bits) bits=$2; shift 2 ;;
    -p) p=$2; shift 2 ;;
    -n) n=$2; shift 2 ;;
    -t) threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --peer) peer=1; shift ;;
    -h | --help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "decode_vs_bandwidth.sh: unknown argument \"$1\" (see --help)" >&2; exit 2 ;;
    esac
done

# BIN=DIR runs prebuilt binaries (DIR/kiln, DIR/bandwidth, DIR/make_random_model) without
# building, e.g. on the GPU host where the build dependencies are missing; RUN="taskset -c 2,3"
# pins every command.
bin=${BIN:-}
[ -n "$bin" ] || make -s -j2 bench >/dev/null
bench_bin=${bin:-build/bench}
run=${RUN:-}
kiln=${KILN:-${bin:+$bin/kiln}}
kiln=${kiln:-build/kiln} # KILN=path compares another build (e.g. a baseline) on the same probe
name="$shape-$dtype${bits:+-q$bits}"
model="build/models/$name"
if [ ! -d "$model" ]; then
    mkdir -p build/models
    "$bench_bin/make_random_model" --shape "$shape" --dtype "$dtype" ${bits:+--bits "$bits"} "$model" >&2
fi
if [ -n "$peer" ]; then
    [ -d bench/peer/node_modules/node-llama-cpp ] || make -s bench-peer >&2
    gguf_type=${bits:+q${bits}_0}
    gguf_type=${gguf_type:-$dtype}
    gguf="build/models/$shape-$gguf_type.gguf"
    [ -f "$gguf" ] || "$bench_bin/make_random_gguf" --shape "$shape" --type "$gguf_type" "$gguf" >&2
fi
# The largest weight file stands for all of them (one file below 4 GB; else the first shard).
file=$(ls -S "$model"/*.safetensors | head -n 1)
tflag=${threads:+-t $threads}

# field NAME JSON_LINE -> the number after "NAME":
field() { sed -n "s/.*\"$1\":\([0-9.eE+-]*\).*/\1/p" <<<"$2"; }
median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
# Quantized weights are read from the mmapped file in place; dense ones are copied at load into
# panel order in anonymous memory (huge pages): each is compared with reading its own kind.
mib=$(( $(du -bc "$model"/*.safetensors | tail -n 1 | cut -f1) >> 20 ))
read_anon() { field median_gb_per_s "$($run "$bench_bin/bandwidth" -m anon -s "$mib" -p 5 $tflag)"; }
if [ -n "$bits" ]; then
    # The issue's "read bandwidth" is the mmapped file's. On AVX2 kiln copies 4- and 8-bit
    # weights into interleaved order in anonymous huge pages at load (compute.h), so the
    # anonymous read is printed next to it: the stricter of the two.
    read_bw() { field median_gb_per_s "$($run "$bench_bin/bandwidth" -m file -p 5 $tflag -f "$file")"; }
    read_what="the mmapped weight file from the page cache"
else
    read_bw() { read_anon; }
    read_what="anonymous memory with huge pages, the model's size, where its panels live"
fi

fma_now() { field gflop_per_s "$($run "$bench_bin/bandwidth" -m fma $tflag)"; }
fma=$(fma_now)
echo "model $model ($(lscpu | sed -n 's/^Model name: *//p'), $(date -u +%FT%TZ))"
printf '%-6s %9s %9s %9s %7s %7s %9s %9s' round read_GB/s tg_tok/s tg_GB/s tg/read tg/alt pp_tok/s pp/tg
[ -z "$bits" ] || printf ' %9s %7s' anon_GB/s tg/anon
[ -z "$peer" ] || printf ' %9s %9s %7s %7s' lc_tg lc_pp tg/lc pp/lc
echo
ratios=() alt_ratios=() anon_ratios=() tgs=() tggbs=() bws=() pps=() pptg=() lctgs=() lcpps=() tglc=() pplc=()
for r in $(seq 1 "$rounds"); do
    bw1=$(read_bw)
    tg=$($run "$kiln" bench "$model" -p 0 -n "$n" -r 1 $tflag --vs-read)
    bw2=$(read_bw)
    bw=$(awk -v a="$bw1" -v b="$bw2" 'BEGIN {printf "%.2f", (a + b) / 2}')
    tps=$(field tokens_per_s "$tg")
    gbs=$(field weight_read_gb_per_s "$tg")
    bytes=$(field model_bytes "$tg")
    ratio=$(awk -v g="$gbs" -v b="$bw" 'BEGIN {printf "%.3f", g / b}')
    alt=$(field decode_vs_read "$tg")
    pp_tps=0 pp_ratio=0
    if [ "$p" -gt 0 ]; then
        pp=$($run "$kiln" bench "$model" -p "$p" -n 0 -r 1 $tflag)
        pp_tps=$(field tokens_per_s "$pp")
        flops=$(field flops_per_token "$pp")
        pp_ratio=$(awk -v a="$pp_tps" -v b="$tps" 'BEGIN {printf "%.2f", a / b}')
    fi
    printf '%-6s %9s %9.2f %9.2f %7s %7.3f %9.1f %9s' "$r" "$bw" "$tps" "$gbs" "$ratio" "$alt" "$pp_tps" "$pp_ratio"
    if [ -n "$bits" ]; then
        bwa=$(read_anon)
        ratio_a=$(awk -v g="$gbs" -v b="$bwa" 'BEGIN {printf "%.3f", g / b}')
        printf ' %9s %7s' "$bwa" "$ratio_a"
        anon_ratios+=("$ratio_a")
    fi
    if [ -n "$peer" ]; then
        lc=$($run node bench/llama_cpp_peer.mjs "$gguf" -p "$p" -n "$n" $tflag -r 1)
        lc_pp=$(field tokens_per_s "$(grep '"pp' <<<"$lc" || true)")
        lc_tg=$(field tokens_per_s "$(grep '"tg' <<<"$lc")")
        lc_pp=${lc_pp:-0}
        tg_lc=$(awk -v a="$tps" -v b="$lc_tg" 'BEGIN {printf "%.2f", a / b}')
        pp_lc=$(awk -v a="$pp_tps" -v b="$lc_pp" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
        printf ' %9.2f %9.1f %7s %7s' "$lc_tg" "$lc_pp" "$tg_lc" "$pp_lc"
        lctgs+=("$lc_tg") lcpps+=("$lc_pp") tglc+=("$tg_lc") pplc+=("$pp_lc")
    fi
    echo
    # The FMA peak is the best seen over the run: contention only ever lowers it.
    fma=$(awk -v a="$fma" -v b="$(fma_now)" 'BEGIN {print (b > a ? b : a)}')
    ratios+=("$ratio") alt_ratios+=("$alt") tgs+=("$tps") tggbs+=("$gbs") bws+=("$bw") pps+=("$pp_tps") pptg+=("$pp_ratio")
done

m_ratio=$(printf '%s\n' "${ratios[@]}" | median)
m_alt=$(printf '%s\n' "${alt_ratios[@]}" | median)
m_tg=$(printf '%s\n' "${tgs[@]}" | median)
m_gbs=$(printf '%s\n' "${tggbs[@]}" | median)
m_bw=$(printf '%s\n' "${bws[@]}" | median)
m_pp=$(printf '%s\n' "${pps[@]}" | median)
m_pptg=$(printf '%s\n' "${pptg[@]}" | median)
ceiling=$(awk -v f="$fma" -v fl="${flops:-0}" 'BEGIN {if (fl > 0) printf "%.1f", f * 1e9 / fl; else print 0}')
echo "summary ($rounds rounds, medians; $(nproc) cores shared with other work, so expect noise):"
awk -v t="$m_tg" -v b="$bytes" -v g="$m_gbs" -v n="$n" 'BEGIN {printf "  decode tg%d:       %.2f tokens/s, %.3f GB of weights per token, %.2f GB/s\n", n, t, b / 1e9, g}'
awk -v b="$m_bw" -v w="$read_what" 'BEGIN {printf "  read bandwidth:   %.2f GB/s (%s, around each decode)\n", b, w}'
if [ -n "$peer" ]; then
    m_lctg=$(printf '%s\n' "${lctgs[@]}" | median)
    m_lcpp=$(printf '%s\n' "${lcpps[@]}" | median)
    m_tglc=$(printf '%s\n' "${tglc[@]}" | median)
    m_pplc=$(printf '%s\n' "${pplc[@]}" | median)
    lc_bytes=$(du -b "$gguf" | cut -f1)
    awk -v t="$m_lctg" -v b="$lc_bytes" -v bw="$m_bw" -v n="$n" -v r="$m_tglc" -v g="$(basename "$gguf")" 'BEGIN {
        printf "  llama.cpp here:   tg%d %.2f tokens/s on %s (%.3f GB; %.2f of the read bandwidth); kiln = %.2fx\n", n, t, g, b / 1e9, t * b / 1e9 / bw, r }'
    if [ "$p" -gt 0 ]; then
        awk -v pp="$m_lcpp" -v r="$m_pplc" -v p="$p" -v q="$bits" 'BEGIN {
            printf "  llama.cpp here:   pp%d %.1f tokens/s; kiln = %.2fx%s\n", p, pp, r, q != "" ? "   (target >= 1.30, same machine, same run)" : "" }'
    fi
fi
# llama.cpp's llama-bench on the Llama-3.2-1B shape, 2 threads, 2-core AMD EPYC Zen 4,
# 2026-11-26, best of two passes (pp512, tg128), from the quantization issue.
case "$bits" in
4) issue_q="Q4_0" issue_pp=125.4 issue_tg=37.5 ;;
8) issue_q="Q8_0" issue_pp=93.9 issue_tg=21.8 ;;
*) issue_q="" ;;
esac
if [ -n "$issue_q" ]; then
    awk -v r="$m_ratio" 'BEGIN {printf "  decode / read:    %.2f   (the file read around each decode)\n", r}'
    awk -v r="$m_alt" 'BEGIN {printf "  decode / read, alternated token by token: %.2f   (target >= 0.85 for quantized weights)\n", r}'
    awk -v r="$(printf '%s\n' "${anon_ratios[@]}" | median)" -v l="${KILN_QUANT_LAYOUT:-interleaved where the CPU prefers it}" 'BEGIN {
        printf "  decode / anon:    %.2f   (against reading anonymous huge pages, where interleaved weights live; layout: %s)\n", r, l }'
    # The issue's figures are for this shape and pp512 only.
    [ "$shape" = llama-1b ] || exit 0
    awk -v pt="$issue_tg" -v q="$issue_q" 'BEGIN {printf "  llama.cpp %s tg128 there: %.1f tokens/s (its machine: ~38.6 GB/s read; compare ratios, not rates)\n", q, pt}'
    if [ "$p" -eq 512 ]; then
        awk -v pp="$m_pp" -v pq="$issue_pp" -v q="$issue_q" 'BEGIN {
            printf "  prefill pp512:     %.1f tokens/s = %.2f x llama.cpp %s there (%.1f)   (target >= 1.30 on the same kind of machine)\n", pp, pp / pq, q, pq }'
    fi
    exit 0
fi
awk -v r="$m_ratio" 'BEGIN {printf "  decode / read:    %.2f   (target >= 0.80)\n", r}'
awk -v r="$m_alt" 'BEGIN {printf "  decode / read, alternated token by token: %.2f\n", r}'
if [ "$p" -gt 0 ]; then
    awk -v pp="$m_pp" -v r="$m_pptg" -v p="$p" 'BEGIN {printf "  prefill pp%d:     %.1f tokens/s = %.1f x decode   (target >= 10)\n", p, pp, r}'
    if [ "$ceiling" != 0 ]; then
        awk -v c="$ceiling" -v f="$fma" -v fl="$flops" -v pp="$m_pp" -v t="$m_tg" 'BEGIN {
            printf "  prefill ceiling:  %.1f tokens/s at the best FMA rate seen, %.0f GFLOP/s (%.2f GFLOP a token); prefill reaches %.0f%% of it\n", c, f, fl / 1e9, 100 * pp / c
            printf "  10x decode would need %.1f tokens/s = %.0f%% of that ceiling\n", 10 * t, 1000 * t / c
            printf "  prefill / decode can reach at most %.1fx on this machine now (the ceiling over this decode rate)\n", c / t }'
    fi
fi
