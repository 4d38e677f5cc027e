"""check_convert.py SRC OUT BITS GROUP DTYPE — checks a `kiln convert` output against an
independent implementation of MLX's affine quantization (tools/fixture_common.py, numpy,
transcribed from mlx's source separately from kiln's C code). Prints one "ok - ..." or
"not ok - ..." line per check (tests/run.sh counts them).

Checks: the index (total_size, sorted weight_map naming every tensor, shard names), the
{"format": "mlx"} metadata, config.json's quantization block and its quantization_config copy;
for every quantized tensor the packed codes, scales and biases equal the reference quantizer's
(a code may differ by one where float division lands on a rounding tie), and every dequantized
weight lies within one quantization step of the original; float tensors equal the source
rounded to DTYPE; layers whose input size is not a multiple of GROUP stay float.
"""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import fixture_common as fc  # noqa: E402

NP = {"F32": "<f4", "F16": "<f2", "U32": "<u4"}


def load_dir(path):
    """name -> float32 or uint32 numpy array, over every safetensors file of a folder."""
    out, meta = {}, {}
    for f in sorted(os.listdir(path)):
        if not f.endswith(".safetensors"):
            continue
        header, data = fc.read_safetensors(os.path.join(path, f))
        meta[f] = header.pop("__metadata__", None)
        for name, e in header.items():
            a, b = e["data_offsets"]
            raw = data[a:b]
            if e["dtype"] == "BF16":
                arr = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
            else:
                arr = np.frombuffer(raw, NP[e["dtype"]])
            out[name] = (e["dtype"], arr.reshape(e["shape"]), f, b - a)
    return out, meta


def main():
    src, dst, bits, group, dtype = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    label = f"convert {os.path.basename(src)} {bits}-bit g{group} {dtype}"
    failures = []
    s, _ = load_dir(src)
    d, meta = load_dir(dst)

    def check(cond, what):
        if not cond:
            failures.append(what)

    # files: index, metadata, config
    idx = json.load(open(os.path.join(dst, "model.safetensors.index.json")))
    wm = idx["weight_map"]
    check(list(wm) == sorted(wm), "weight_map is not sorted")
    check(set(wm) == set(d), "weight_map does not name exactly the tensors in the shards")
    check(all(wm[n] == d[n][2] for n in d), "weight_map points at the wrong shard")
    total = sum(t[3] for t in d.values())
    check(idx["metadata"]["total_size"] == total, f"total_size {idx['metadata']['total_size']} != {total}")
    check(all(m == {"format": "mlx"} for m in meta.values()), f"metadata {meta}")
    shards = sorted(meta)
    if len(shards) > 1:
        want = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
        check(shards == want, f"shard names {shards}")
    else:
        check(shards == ["model.safetensors"], f"shard names {shards}")
    cfg = json.load(open(os.path.join(dst, "config.json")))
    q = cfg.get("quantization", {})
    check(q.get("bits") == bits and q.get("group_size") == group and q.get("mode") == "affine",
          f"quantization block {q}")
    check(cfg.get("quantization_config") == q, "quantization_config is not a copy of quantization")

    n_quant = n_float = 0
    # the scale and bias are stored rounded to DTYPE: allow that rounding on top of one step
    eps = {"float32": 0.0, "float16": 2.0**-11, "bfloat16": 2.0**-8}[dtype]
    for name, (sdt, w, _, _) in s.items():
        module = name[: -len(".weight")] if name.endswith(".weight") else None
        quantizable = module and w.ndim == 2 and w.shape[1] % group == 0
        if quantizable:
            n_quant += 1
            if f"{module}.scales" not in d:
                failures.append(f"{name} was not quantized")
                continue
            wr = fc.round_to(w.astype(np.float32), dtype)
            codes, scales, biases = fc.mlx_affine_quantize(wr, group, bits, dtype)
            got = fc.unpack_codes_mlx(d[name][1], bits, w.shape[1])
            diff = np.abs(got.astype(np.int64) - codes.astype(np.int64))
            check(diff.max() <= 1 and (diff > 0).mean() < 1e-3,
                  f"{name}: {int((diff > 0).sum())} codes differ from the reference quantizer")
            check(np.array_equal(d[f"{module}.scales"][1].astype(np.float32), scales), f"{name}: scales differ")
            check(np.array_equal(d[f"{module}.biases"][1].astype(np.float32), biases), f"{name}: biases differ")
            deq = fc.dequantize(got, d[f"{module}.scales"][1].astype(np.float32),
                                d[f"{module}.biases"][1].astype(np.float32), group)
            step = np.repeat(np.abs(d[f"{module}.scales"][1].astype(np.float32)), group, axis=1)
            err = np.abs(deq - w.astype(np.float32))
            qs = got.astype(np.float32) * step
            bias_abs = np.repeat(np.abs(d[f"{module}.biases"][1].astype(np.float32)), group, axis=1)
            check(np.all(err <= step + (qs + bias_abs) * eps + 1e-6), f"{name}: a dequantized weight is {float((err / (step + 1e-30)).max()):.3f} steps away")
        else:
            n_float += 1
            if name not in d or d[name][0] == "U32":
                failures.append(f"{name} should stay float")
                continue
            check(np.array_equal(d[name][1].astype(np.float32), fc.round_to(w.astype(np.float32), dtype)),
                  f"{name}: float values differ from the source rounded to {dtype}")
    if failures:
        print(f"not ok - {label}: " + "; ".join(failures[:4]) + (f" (+{len(failures) - 4} more)" if len(failures) > 4 else ""))
    else:
        print(f"ok - {label}: {n_quant} quantized tensors match the reference quantizer, {n_float} stay float")


if __name__ == "__main__":
    main()
