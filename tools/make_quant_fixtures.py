"""make_quant_fixtures.py — MLX-quantized (affine) models with reference logits, for kiln's tests.

Run on a machine with torch, transformers and numpy (the GPU device):
    PYTHONUNBUFFERED=1 python3 tools/make_quant_fixtures.py OUT_DIR [NAME ...]
Writes OUT_DIR/NAME/ with config.json, model.safetensors, tokens.json, logits.f32, meta.json
(the same layout as make_hf_fixtures.py); tests/integration/test_quant_logits.sh compares
`kiln logits` against them.

The model files are what mlx-lm's convert writes (mlx_lm/utils.py `quantize_model`):
  * every Linear and the embedding whose input size is a multiple of the (global) group size is
    quantized: P.weight uint32 [out, in*bits/32], P.scales and P.biases [out, in/group] in the
    model's dtype (f16 or bf16); P.bias (if any) and all norms stay in the model's dtype;
  * lm_head is quantized when it is not tied (a tied model has no lm_head tensor: the output
    projection reuses the quantized embedding);
  * config.json has "quantization": {"group_size", "bits", "mode": "affine", optional per-layer
    entries keyed by module path: a dict of group_size/bits, or false = not quantized} and the
    same block copied as "quantization_config"; the safetensors metadata is {"format": "mlx"}.
The quantizer itself (scale/bias rule, packing of 2..8-bit codes) is in fixture_common.py,
transcribed from MLX's source, and each packed tensor is checked against an unpacker
transcribed separately from MLX's dequantization code.

The reference: a Hugging Face model in float32 whose weights are exactly the dequantized
weights (scales * q + biases, computed in float32 from the stored f16/bf16 scales and biases),
other parameters the stored f16/bf16 values upcast; run like make_hf_fixtures.py.
"""

import copy
import json
import os
import shutil
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture_common as fc  # noqa: E402
import make_hf_fixtures as hf  # noqa: E402

TOLERANCE = 5e-3


def base(arch, **kw):
    common = dict(
        hidden_size=128,
        intermediate_size=384,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=256,
        num_hidden_layers=2,
    )
    common.update(kw)
    if arch == "llama":
        return hf.llama_cfg(head_dim=32, **common)
    if arch == "mistral":
        return hf.mistral_cfg(head_dim=32, **common)
    if arch == "qwen2":
        return hf.qwen2_cfg(**common)
    if arch == "qwen3":
        return hf.qwen3_cfg(head_dim=32, **common)
    raise ValueError(arch)


CASES = [
    dict(name="q4_g64_f16", arch="llama", dtype="float16", q={"group_size": 64, "bits": 4},
         covers="4-bit, group 64, float16 scales/biases and norms; Llama GQA, untied (quantized lm_head)"),
    dict(name="q8_g64_bf16", arch="llama", dtype="bfloat16", q={"group_size": 64, "bits": 8}, tied=True,
         covers="8-bit, group 64, bfloat16; tied embeddings: no lm_head tensor, the output "
         "projection uses the quantized embedding"),
    dict(name="q2_g32_f16", arch="llama", dtype="float16", q={"group_size": 32, "bits": 2},
         covers="2-bit, group 32, float16; 16 codes per uint32"),
    dict(name="q3_g32_bf16", arch="qwen3", dtype="bfloat16", q={"group_size": 32, "bits": 3},
         covers="3-bit, group 32, bfloat16 (codes straddle uint32 words: 32 codes = 3 words); "
         "Qwen3 (q_norm/k_norm stay float)"),
    dict(name="q5_g64_f16", arch="mistral", dtype="float16", q={"group_size": 64, "bits": 5},
         covers="5-bit, group 64, float16 (codes straddle words: 64 codes = 10 words); Mistral"),
    dict(name="q6_g64_bf16", arch="qwen2", dtype="bfloat16", q={"group_size": 64, "bits": 6}, tied=True,
         covers="6-bit, group 64, bfloat16 (codes straddle words: 16 codes = 3 words); Qwen2 "
         "with q/k/v biases kept in bf16 beside quantized weights; tied embeddings"),
    dict(name="q4_g128_f16", arch="llama", dtype="float16", q={"group_size": 128, "bits": 4},
         cfg={"intermediate_size": 320},
         covers="4-bit, group 128, float16; intermediate 320 is not a multiple of 128, so every "
         "down_proj stays float16 (mlx-lm's rule), beside quantized layers"),
    dict(name="mixed_q4_g64_bf16", arch="llama", dtype="bfloat16",
         q={"group_size": 64, "bits": 4,
            "model.layers.0.mlp.down_proj": {"group_size": 32, "bits": 8},
            "model.layers.1.self_attn.v_proj": False,
            "model.embed_tokens": {"group_size": 32, "bits": 3},
            "lm_head": {"group_size": 128, "bits": 6}},
         covers="per-layer overrides in the quantization block: default 4-bit group 64; layer 0 "
         "down_proj 8-bit group 32; layer 1 v_proj false (stored as plain bf16 weight); "
         "embedding 3-bit group 32; lm_head 6-bit group 128"),
]


def layer_params(path, qblock, in_features):
    """(group_size, bits) for a module, or None when it stays float (mlx-lm's predicate: the
    input size must divide by the global group size; a per-layer entry overrides)."""
    gs, bits = qblock["group_size"], qblock["bits"]
    if in_features % gs:
        return None
    if path in qblock:
        o = qblock[path]
        if o is False:
            return None
        gs, bits = o["group_size"], o["bits"]
        if in_features % gs:
            raise ValueError(f"{path}: override group {gs} does not divide {in_features}")
    return gs, bits


def quantize_model(model, cfg, qblock, dtype):
    """Returns (tensors for the safetensors file, dequantized float32 state dict, info)."""
    tied = cfg.get("tie_word_embeddings", False)
    sd = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
    if tied:
        sd.pop("lm_head.weight", None)
    quantizable = {}
    for path, mod in model.named_modules():
        if isinstance(mod, (torch.nn.Linear, torch.nn.Embedding)) and not (tied and path == "lm_head"):
            quantizable[path + ".weight"] = path
    tensors, deq, info, codes_of = {}, {}, {}, {}
    for name in sorted(sd):
        w = fc.round_to(sd[name], dtype)
        path = quantizable.get(name)
        params = layer_params(path, qblock, w.shape[1]) if path else None
        if params is None:
            tensors[name] = fc.float_tensor(w, dtype)
            deq[name] = w
            if path:
                info[path] = "float"
            continue
        gs, bits = params
        packed, scales, biases, wd = fc.quantize_and_pack(w, gs, bits, dtype)
        tensors[path + ".weight"] = ("U32", list(packed.shape), packed.astype("<u4").tobytes())
        tensors[path + ".scales"] = fc.float_tensor(scales, dtype)
        tensors[path + ".biases"] = fc.float_tensor(biases, dtype)
        deq[name] = wd
        codes_of[name] = (fc.unpack_codes_mlx(packed, bits, w.shape[1]), scales, biases, gs)
        info[path] = f"{bits}-bit group {gs}"
    if tied:
        deq["lm_head.weight"] = deq["model.embed_tokens.weight"]
    return tensors, deq, info, codes_of


def verify_file(path, tensors):
    """Reads the file back with our reader and, if available, the safetensors library."""
    header, data = fc.read_safetensors(path)
    for name, (dt, shape, raw) in tensors.items():
        h = header[name]
        a, b = h["data_offsets"]
        assert h["dtype"] == dt and h["shape"] == shape and data[a:b] == raw, name
    try:
        from safetensors import safe_open
    except ImportError:
        return "own reader only"
    with safe_open(path, framework="pt") as f:
        assert f.metadata() == {"format": "mlx"}
        for name, (dt, shape, raw) in tensors.items():
            t = f.get_tensor(name)
            assert list(t.shape) == shape, name
            if dt == "U32":
                got = t.view(torch.int32).numpy().astype("<i4").tobytes()
            elif dt == "BF16":
                got = t.view(torch.int16).numpy().astype("<i2").tobytes()
            else:
                got = t.numpy().tobytes()
            assert got == raw, name
    return "own reader and safetensors.safe_open"


def reference_model(cfg, deq):
    config = hf.load_config(cfg)
    m = hf.AutoModelForCausalLM.from_config(config, attn_implementation="eager").float()
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in deq.items()}
    missing, unexpected = m.load_state_dict(state, strict=False)
    missing = [k for k in missing if not (cfg.get("tie_word_embeddings") and k == "lm_head.weight")]
    assert not missing and not unexpected, (missing, unexpected)
    hf.tie(m)
    for k, v in m.state_dict().items():
        assert torch.equal(v, state[k]), k
    return m.to(hf.DEVICE).eval()


def q8_0_hooks(model):
    """Simulates int8 activations (blocks of 32, one scale each, as in Q8_0) at every Linear input."""

    def hook(_mod, args):
        x = args[0]
        shape = x.shape
        b = x.reshape(-1, 32)
        d = b.abs().amax(dim=-1, keepdim=True) / 127.0
        q = torch.where(d > 0, torch.round(b / d), torch.zeros_like(b))
        return (q.mul(d).reshape(shape),) + tuple(args[1:])

    return [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Linear)]


def make_case(case, root, seed):
    name = case["name"]
    out = os.path.join(root, name)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    dtype = case["dtype"]
    cfg = base(case["arch"], tie_word_embeddings=case.get("tied", False), torch_dtype=dtype, **case.get("cfg", {}))
    model = hf.build_model(cfg, seed)
    qblock = dict(case["q"], mode="affine")
    tensors, deq, info, codes_of = quantize_model(model, cfg, qblock, dtype)
    fpath = os.path.join(out, "model.safetensors")
    fc.write_safetensors(fpath, tensors, {"format": "mlx"})
    checked = verify_file(fpath, tensors)
    full_cfg = dict(cfg, quantization=qblock, quantization_config=copy.deepcopy(qblock))
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(full_cfg, f, indent=2)
        f.write("\n")

    ref = reference_model(cfg, deq)
    tokens, margins = hf.choose_tokens(ref, cfg["vocab_size"], seed + 1)
    logits = hf.logits_of(ref, tokens)
    assert logits.shape == (hf.N_TOKENS, cfg["vocab_size"]) and np.isfinite(logits).all()

    abl = {}
    unq = {k: fc.round_to(v.detach().float().cpu().numpy(), dtype) for k, v in model.state_dict().items()}
    abl["unquantized_weights"] = hf.rel_l2(hf.logits_of(reference_model(cfg, unq), tokens), logits)
    pos = dict(deq)
    for k, (codes, s, b, gs) in codes_of.items():
        pos[k] = fc.dequantize(codes, np.abs(s), b, gs)
    if cfg.get("tie_word_embeddings"):
        pos["lm_head.weight"] = pos["model.embed_tokens.weight"]
    abl["scales_taken_as_positive"] = hf.rel_l2(hf.logits_of(reference_model(cfg, pos), tokens), logits)
    hooks = q8_0_hooks(ref)
    abl["q8_0_activations_at_every_linear"] = hf.rel_l2(hf.logits_of(ref, tokens), logits)
    for h in hooks:
        h.remove()

    n_neg = sum(int((s < 0).sum()) for (_c, s, _b, _g) in codes_of.values())
    n_all = sum(int(s.size) for (_c, s, _b, _g) in codes_of.values())
    meta = {
        "name": name,
        "architecture": cfg["architectures"][0],
        "covers": case["covers"],
        "storage_dtype": dtype,
        "quantization": qblock,
        "layers": info,
        "negative_scales": f"{n_neg} of {n_all}",
        "quantizer": "MLX affine, transcribed from mlx/backend/cpu/quantized.cpp quantize() "
        "(tools/fixture_common.py); packing checked against a transcription of extract_bits()",
        "file_checked_with": checked,
        "reference": "transformers model in float32 holding the dequantized weights "
        "(scales*q+biases in float32), attn_implementation='eager', GPU, TF32 off",
        "n_tokens": hf.N_TOKENS,
        "vocab_size": cfg["vocab_size"],
        "tolerance_rel_l2": TOLERANCE,
        "seed": seed,
        "min_top1_margin_in_row_std": round(min(margins), 4),
        "ablations_rel_l2": abl,
        **hf.versions(),
    }
    hf.write_case_files(out, tokens, logits, meta)
    print(f"{name}: {meta['bytes_without_meta']} bytes, min margin {meta['min_top1_margin_in_row_std']}, "
          f"negative scales {meta['negative_scales']}, ablations {abl}", flush=True)


def main(argv):
    return hf.run_cases(argv, __doc__, CASES, make_case, 2000)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
