"""check_fixtures.py — recomputes every fixture's logits with a plain numpy forward pass.

    /usr/bin/python3 tools/check_fixtures.py [tests/fixtures/hf/NAME ...]   (needs python3-numpy)

A second, independent reading of the fixtures: it uses only what an engine has (config.json and
the safetensors files; MLX-quantized weights decoded from their packed codes), written from the
architectures' definitions rather than from transformers' code, in float64. Agreement with
logits.f32 (made by transformers) shows that the folders alone determine the reference logits,
and it is a readable statement of the semantics kiln must match: RMSNorm, rotate-half RoPE with
default / linear / llama3 frequencies (from rope_scaling or transformers 5's rope_parameters),
grouped-query causal attention, Qwen3's per-head q/k norms, biases, tied embeddings, and MLX's
affine dequantization with per-layer overrides.
"""

import glob
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture_common as fc  # noqa: E402


def load_tensors(folder):
    files = sorted(glob.glob(os.path.join(folder, "*.safetensors")))
    out = {}
    for path in files:
        header, data = fc.read_safetensors(path)
        for name, h in header.items():
            if name == "__metadata__":
                continue
            a, b = h["data_offsets"]
            raw = data[a:b]
            dt = h["dtype"]
            if dt == "F32":
                x = np.frombuffer(raw, "<f4").astype(np.float64)
            elif dt == "F16":
                x = np.frombuffer(raw, "<f2").astype(np.float64)
            elif dt == "BF16":
                x = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32).astype(np.float64)
            elif dt == "U32":
                x = np.frombuffer(raw, "<u4").copy()
            else:
                raise ValueError(f"{path}: {name}: dtype {dt}")
            out[name] = x.reshape(h["shape"])
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            want = set(json.load(f)["weight_map"])
        assert want == set(out), "index does not match the shards"
    return out


def dequantized(tensors, cfg):
    """Replaces every P.weight/P.scales/P.biases triple by the float weight."""
    q = cfg.get("quantization")
    if not q:
        return tensors
    out = dict(tensors)
    for name in [n for n in tensors if n.endswith(".scales")]:
        path = name[: -len(".scales")]
        gs, bits = q["group_size"], q["bits"]
        if isinstance(q.get(path), dict):
            gs, bits = q[path]["group_size"], q[path]["bits"]
        packed = out.pop(path + ".weight")
        scales = out.pop(path + ".scales")
        biases = out.pop(path + ".biases")
        cols = packed.shape[1] * 32 // bits
        assert scales.shape[1] * gs == cols, path
        codes = fc.unpack_codes_mlx(packed.astype(np.uint32), bits, cols).astype(np.float64)
        w = codes.reshape(len(codes), -1, gs) * scales[..., None] + biases[..., None]
        out[path + ".weight"] = w.reshape(len(codes), cols)
    return out


def rope_settings(cfg):
    rp = cfg.get("rope_parameters")
    if rp is not None:
        theta = rp.get("rope_theta", cfg.get("rope_theta", 10000.0))
        scaling = None if rp.get("rope_type", "default") == "default" else rp
    else:
        theta = cfg.get("rope_theta", 10000.0)
        scaling = cfg.get("rope_scaling")
    return theta, scaling


def inv_freq(cfg, head_dim):
    theta, scaling = rope_settings(cfg)
    inv = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    kind = (scaling or {}).get("rope_type", (scaling or {}).get("type", "default"))
    if kind == "linear":
        inv = inv / scaling["factor"]
    elif kind == "llama3":
        factor, lo, hi = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
        old = scaling["original_max_position_embeddings"]
        out = []
        for f in inv:
            wavelen = 2 * math.pi / f
            if wavelen < old / hi:
                out.append(f)
            elif wavelen > old / lo:
                out.append(f / factor)
            else:
                smooth = (old / wavelen - lo) / (hi - lo)
                out.append((1 - smooth) * f / factor + smooth * f)
        inv = np.array(out)
    elif kind != "default":
        raise ValueError(f"rope type {kind}")
    return inv


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, pos, inv):
    """x [..., T, D]: rotate-half convention (pairs i and i + D/2)."""
    ang = pos[:, None] * inv[None, :]
    cos = np.concatenate([np.cos(ang)] * 2, axis=-1)
    sin = np.concatenate([np.sin(ang)] * 2, axis=-1)
    half = x.shape[-1] // 2
    rot = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rot * sin


def linear(t, prefix, x):
    y = x @ t[prefix + ".weight"].T
    if prefix + ".bias" in t:
        y = y + t[prefix + ".bias"]
    return y


def forward(cfg, t, tokens):
    kind = cfg["model_type"]
    hidden, n_h, n_kv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or hidden // n_h
    eps = cfg["rms_norm_eps"]
    T = len(tokens)
    pos = np.arange(T, dtype=np.float64)
    inv = inv_freq(cfg, hd)
    mask = np.triu(np.full((T, T), -np.inf), 1)
    x = t["model.embed_tokens.weight"][tokens]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rmsnorm(x, t[p + "input_layernorm.weight"], eps)
        q = linear(t, p + "self_attn.q_proj", h).reshape(T, n_h, hd).transpose(1, 0, 2)
        k = linear(t, p + "self_attn.k_proj", h).reshape(T, n_kv, hd).transpose(1, 0, 2)
        v = linear(t, p + "self_attn.v_proj", h).reshape(T, n_kv, hd).transpose(1, 0, 2)
        if kind == "qwen3":
            q = rmsnorm(q, t[p + "self_attn.q_norm.weight"], eps)
            k = rmsnorm(k, t[p + "self_attn.k_norm.weight"], eps)
        q, k = rope(q, pos, inv), rope(k, pos, inv)
        group = n_h // n_kv
        k, v = np.repeat(k, group, axis=0), np.repeat(v, group, axis=0)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(hd) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        a = (s / s.sum(-1, keepdims=True)) @ v
        x = x + linear(t, p + "self_attn.o_proj", a.transpose(1, 0, 2).reshape(T, n_h * hd))
        h = rmsnorm(x, t[p + "post_attention_layernorm.weight"], eps)
        g = linear(t, p + "mlp.gate_proj", h)
        u = linear(t, p + "mlp.up_proj", h)
        x = x + linear(t, p + "mlp.down_proj", g / (1 + np.exp(-g)) * u)
    x = rmsnorm(x, t["model.norm.weight"], eps)
    head = t["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else t["lm_head.weight"]
    if cfg.get("tie_word_embeddings"):
        assert "lm_head.weight" not in t, "tied model carries an lm_head"
    return x @ head.T


def check(folder):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(folder, "tokens.json")) as f:
        tokens = json.load(f)["tokens"]
    t = dequantized(load_tensors(folder), cfg)
    got = forward(cfg, t, np.array(tokens))
    ref = np.fromfile(os.path.join(folder, "logits.f32"), "<f4").astype(np.float64).reshape(len(tokens), -1)
    rel = float(np.linalg.norm(got - ref) / np.linalg.norm(ref))
    same = bool((got.argmax(-1) == ref.argmax(-1)).all())
    return rel, same


def main(argv):
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
    folders = argv or sorted(glob.glob(os.path.join(root, "*", "*")))
    bad = 0
    for folder in folders:
        rel, same = check(folder)
        good = rel < 1e-5 and same
        bad += not good
        print(f"{'ok' if good else 'BAD'} {os.path.relpath(folder, root)}: rel_l2 {rel:.2e}, argmax {'same' if same else 'DIFFERS'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
