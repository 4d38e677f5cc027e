"""make_hf_fixtures.py — reference logits from Hugging Face transformers for kiln's numerics tests.

Run on a machine with torch, transformers, safetensors and numpy (the GPU device):
    PYTHONUNBUFFERED=1 python3 tools/make_hf_fixtures.py OUT_DIR [NAME ...]
It writes OUT_DIR/NAME/ for each case below:
    config.json, model*.safetensors (+ model.safetensors.index.json when sharded)  -- the model
    tokens.json   {"tokens": [...]}                                                  -- the input
    logits.f32    float32 little-endian [n_tokens, vocab]                            -- the answer
    meta.json     what the case covers, versions, and how discriminating it is
tests/integration/test_hf_logits.sh compares `kiln logits` against them.

How a case is made:
  1. config.json is written in the form models on the Hub carry (rope_theta + rope_scaling), and
     transformers loads it as it would load a downloaded model (one case keeps the form that
     transformers 5's save_pretrained writes, with rope_parameters, to cover both);
  2. a model is built from it with a fixed seed; weights get scales that keep activations near
     unit size, norm weights and biases are random (not 1 and 0) so a missing norm or bias shows;
  3. it is saved with save_pretrained (safetensors), in the storage dtype (f32 or bf16);
  4. the reference is the model *reloaded from that folder* with from_pretrained in float32
     (bf16 weights upcast), attn_implementation="eager", TF32 off, run on the GPU;
  5. the 40 tokens are random, but drawn one position at a time so that the reference's top-1
     logit beats the runner-up by a clear margin at every position (a correct engine within the
     tolerance cannot flip the argmax; a wrong one does);
  6. meta.json records "ablations": the relative L2 distance from the reference of the logits of
     plausible mistakes (rope scaling ignored, wrong theta, biases dropped, ...), which shows the
     tolerance (1e-3) separates right from wrong.
"""

import copy
import json
import math
import os
import re
import shutil
import sys
import traceback
import tempfile

import numpy as np
import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

N_TOKENS = 40
MARGIN = 0.1  # top-1 minus top-2 logit, in units of the row's standard deviation
CANDIDATES = 32  # tokens tried per position when looking for a clear margin
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.set_float32_matmul_precision("highest")


# ---------------------------------------------------------------------------------------------
# configs, in the form found on the Hub


def llama_cfg(**kw):
    c = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": 256,
        "hidden_size": 64,
        "intermediate_size": 192,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "hidden_act": "silu",
        "max_position_embeddings": 512,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "rope_scaling": None,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "pretraining_tp": 1,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "bos_token_id": 1,
        "eos_token_id": 2,
        "initializer_range": 0.02,
        "use_cache": True,
    }
    c.update(kw)
    return c


def mistral_cfg(**kw):
    c = llama_cfg(architectures=["MistralForCausalLM"], model_type="mistral", sliding_window=4096)
    for k in ("attention_bias", "mlp_bias", "pretraining_tp", "rope_scaling"):
        del c[k]
    c.update(kw)
    return c


def qwen2_cfg(**kw):
    c = llama_cfg(
        architectures=["Qwen2ForCausalLM"],
        model_type="qwen2",
        use_sliding_window=False,
        sliding_window=4096,
        max_window_layers=2,
        rms_norm_eps=1e-6,
        rope_theta=1000000.0,
        bos_token_id=None,
        eos_token_id=2,
    )
    for k in ("attention_bias", "mlp_bias", "pretraining_tp", "head_dim"):
        del c[k]
    c.update(kw)
    return c


def qwen3_cfg(**kw):
    c = llama_cfg(
        architectures=["Qwen3ForCausalLM"],
        model_type="qwen3",
        head_dim=32,
        use_sliding_window=False,
        sliding_window=None,
        max_window_layers=2,
        rms_norm_eps=1e-6,
        rope_theta=1000000.0,
    )
    for k in ("mlp_bias", "pretraining_tp"):
        del c[k]
    c.update(kw)
    return c


# Each case: name, config, storage dtype, what it covers, ablations (name -> config overrides
# and/or a regex of parameters to zero), save options.
CASES = [
    dict(
        name="llama_gqa_f32",
        config=llama_cfg(),
        covers="Llama, grouped-query attention (4 query heads, 2 kv heads), head_dim 16, "
        "untied lm_head, default RoPE theta 10000, float32 weights",
        ablations={
            "rope_theta_1e6": {"config": {"rope_theta": 1e6}},
            "rms_norm_eps_1e-1": {"config": {"rms_norm_eps": 0.1}},
        },
    ),
    dict(
        name="llama_mha_tied_f32",
        config=llama_cfg(num_key_value_heads=4, num_hidden_layers=3, vocab_size=320, rms_norm_eps=1e-6, tie_word_embeddings=True),
        covers="Llama, multi-head attention (n_kv = n_heads = 4), 3 layers, tied embeddings "
        "(no lm_head.weight in the file), vocab 320, float32",
        ablations={},
    ),
    dict(
        name="llama3_rope_f32",
        config=llama_cfg(
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=32,
            rope_theta=500000.0,
            max_position_embeddings=1024,
            rope_scaling={
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64,
            },
        ),
        covers="Llama 3.1 RoPE scaling (rope_type llama3, factor 8, low 1, high 4, original max 64, "
        "theta 5e5, head_dim 32): wavelengths 6.3 and 14.3 stay (< 64/4), 32.4 is smoothed, the "
        "13 longer ones are divided by 8, so all three branches act on positions 0..39; "
        "multi-query attention (1 kv head)",
        ablations={"no_rope_scaling": {"config": {"rope_scaling": None}}},
    ),
    dict(
        name="llama_linear_rope_bias_f32",
        config=llama_cfg(
            vocab_size=288,
            rope_scaling={"rope_type": "linear", "factor": 2.0},
            attention_bias=True,
            mlp_bias=True,
        ),
        covers="Llama with linear RoPE scaling (factor 2), attention_bias (q/k/v/o biases) and "
        "mlp_bias (gate/up/down biases), all random; vocab 288",
        ablations={
            "no_rope_scaling": {"config": {"rope_scaling": None}},
            "no_attention_biases": {"zero": r"self_attn\..*\.bias$"},
            "no_o_proj_bias": {"zero": r"o_proj\.bias$"},
            "no_mlp_biases": {"zero": r"mlp\..*\.bias$"},
        },
    ),
    dict(
        name="llama_bf16",
        config=llama_cfg(
            vocab_size=384,
            hidden_size=128,
            intermediate_size=320,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=32,
            torch_dtype="bfloat16",
        ),
        dtype="bfloat16",
        covers="Llama stored in bfloat16 (torch_dtype bfloat16), hidden 128, head_dim 32, GQA; the "
        "reference upcasts the bf16 weights to float32 and computes in float32",
        ablations={},
    ),
    dict(
        name="llama_sharded_f32",
        config=llama_cfg(num_hidden_layers=3, rms_norm_eps=1e-6),
        save={"max_shard_size": "200KB"},
        covers="Llama saved by save_pretrained in several safetensors shards with "
        "model.safetensors.index.json",
        ablations={},
    ),
    dict(
        name="llama_v5_config_f32",
        config=llama_cfg(rope_theta=100000.0, vocab_size=272),
        keep_saved_config=True,
        covers="config.json exactly as transformers 5's save_pretrained writes it (rope_parameters "
        "instead of rope_theta/rope_scaling, dtype instead of torch_dtype); RoPE theta 1e5, so "
        "an engine that falls back to 10000 fails",
        ablations={"rope_theta_10000": {"config": {"rope_theta": 10000.0}}},
    ),
    dict(
        name="mistral_f32",
        config=mistral_cfg(num_key_value_heads=1, rope_theta=1000000.0),
        covers="Mistral (MistralForCausalLM), sliding_window 4096 (longer than the sequence, so "
        "attention is plainly causal), 1 kv head, theta 1e6",
        ablations={},
    ),
    dict(
        name="qwen2_f32",
        config=qwen2_cfg(vocab_size=320, tie_word_embeddings=True),
        covers="Qwen2: q/k/v projections with (random) biases, o_proj without, tied embeddings, "
        "theta 1e6, vocab 320",
        ablations={"no_qkv_biases": {"zero": r"self_attn\.[qkv]_proj\.bias$"}},
    ),
    dict(
        name="qwen3_f32",
        config=qwen3_cfg(),
        covers="Qwen3: per-head RMSNorm on q and k (q_norm, k_norm, random weights) before RoPE, "
        "explicit head_dim 32 with hidden 64 and 4 heads (heads*head_dim = 128 != hidden), GQA",
        ablations={"qk_norm_weights_ones": {"ones": r"self_attn\.[qk]_norm\.weight$"}},
    ),
    dict(
        name="qwen3_bf16_tied",
        config=qwen3_cfg(
            hidden_size=128,
            intermediate_size=384,
            head_dim=16,
            vocab_size=384,
            tie_word_embeddings=True,
            torch_dtype="bfloat16",
        ),
        dtype="bfloat16",
        covers="Qwen3 in bfloat16 with tied embeddings, hidden 128, 4 heads of head_dim 16 "
        "(heads*head_dim = 64 != hidden)",
        ablations={},
    ),
]


# ---------------------------------------------------------------------------------------------
# building models


def load_config(cfg_dict):
    """Loads a config dict the way a downloaded model's config.json is loaded."""
    d = tempfile.mkdtemp()
    try:
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg_dict, f)
        return AutoConfig.from_pretrained(d)
    finally:
        shutil.rmtree(d)


def randomize(model, seed):
    """Weights scaled so activations stay near unit size; random norms and biases."""
    gen = torch.Generator().manual_seed(seed)
    tied = getattr(model.config, "tie_word_embeddings", False)
    hidden = model.config.hidden_size
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                v = torch.rand(p.shape, generator=gen) + 0.5  # uniform [0.5, 1.5)
            elif name.endswith(".bias"):
                v = torch.randn(p.shape, generator=gen) * 0.2
            elif "embed_tokens" in name:
                v = torch.randn(p.shape, generator=gen) * (0.5 if tied else 1.0)
            elif name.startswith("lm_head"):
                v = torch.randn(p.shape, generator=gen) * (2.0 / math.sqrt(hidden))
            else:
                v = torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[-1])
            p.copy_(v.to(p.dtype))


def tie(model):
    if getattr(model.config, "tie_word_embeddings", False):
        model.tie_weights()
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


def build_model(cfg_dict, seed):
    config = load_config(cfg_dict)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager").float()
    randomize(model, seed)
    tie(model)
    return model.eval()


def save_model(model, out, dtype, save_kwargs):
    model = copy.deepcopy(model)
    if dtype == "bfloat16":
        model = model.to(torch.bfloat16)
    try:
        model.save_pretrained(out, safe_serialization=True, **save_kwargs)
    except TypeError:  # transformers versions without the argument always write safetensors
        model.save_pretrained(out, **save_kwargs)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(out, extra)):
            os.remove(os.path.join(out, extra))


def load_reference(folder):
    kw = dict(attn_implementation="eager")
    try:
        m = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **kw)
    except TypeError:
        m = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32, **kw)
    return m.float().to(DEVICE).eval()


def with_config(model, overrides):
    """A copy of model with config keys changed (the weights kept), for ablations."""
    cfg = copy.deepcopy(model.config)
    d = cfg.to_dict()
    d.update(overrides)
    # rebuild through the Hub form so rope settings are re-derived
    base = {k: v for k, v in d.items() if not k.startswith("_")}
    if "rope_parameters" in base and ("rope_theta" in overrides or "rope_scaling" in overrides):
        rp = dict(base.pop("rope_parameters") or {})
        theta = overrides.get("rope_theta", rp.get("rope_theta", base.get("rope_theta")))
        scaling = overrides["rope_scaling"] if "rope_scaling" in overrides else (
            None if rp.get("rope_type", "default") == "default" else {k: v for k, v in rp.items() if k != "rope_theta"}
        )
        base["rope_theta"] = theta
        base["rope_scaling"] = scaling
    config = load_config(base)
    m = AutoModelForCausalLM.from_config(config, attn_implementation="eager").float()
    missing, unexpected = m.load_state_dict(model.state_dict(), strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    tie(m)
    return m.to(DEVICE).eval()


@torch.no_grad()
def logits_of(model, tokens):
    ids = torch.tensor([tokens], dtype=torch.long, device=DEVICE)
    return model(input_ids=ids, use_cache=False).logits[0].float().cpu().numpy()


@torch.no_grad()
def choose_tokens(model, vocab, seed, n=N_TOKENS):
    """Random tokens, each drawn so that the logits at its position have a clear top-1."""
    rng = np.random.default_rng(seed)
    tokens = []
    margins = []
    for _ in range(n):
        cands = rng.permutation(vocab)[:CANDIDATES]
        batch = torch.tensor([tokens + [int(c)] for c in cands], dtype=torch.long, device=DEVICE)
        last = model(input_ids=batch, use_cache=False).logits[:, -1, :].double()
        top2 = torch.topk(last, 2, dim=-1).values
        margin = ((top2[:, 0] - top2[:, 1]) / last.std(dim=-1)).cpu().numpy()
        ok = np.nonzero(margin >= MARGIN)[0]
        pick = int(ok[0]) if len(ok) else int(np.argmax(margin))
        tokens.append(int(cands[pick]))
        margins.append(float(margin[pick]))
    return tokens, margins


def rel_l2(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def ablate(model, spec):
    if "config" in spec:
        m = with_config(model, spec["config"])
    else:
        m = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "zero" in spec and re.search(spec["zero"], name):
                p.zero_()
            if "ones" in spec and re.search(spec["ones"], name):
                p.fill_(1.0)
    return m


def folder_size(path):
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))


def write_case_files(out, tokens, logits, meta):
    with open(os.path.join(out, "tokens.json"), "w") as f:
        json.dump({"tokens": tokens}, f)
        f.write("\n")
    with open(os.path.join(out, "logits.f32"), "wb") as f:
        f.write(np.ascontiguousarray(logits, dtype="<f4").tobytes())
    meta["files"] = sorted(os.listdir(out) + ["meta.json"])
    meta["bytes_without_meta"] = folder_size(out)
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")


def versions():
    return {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if DEVICE == "cuda" else "cpu",
    }


def make_case(case, root, seed):
    name = case["name"]
    out = os.path.join(root, name)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    dtype = case.get("dtype", "float32")
    cfg = case["config"]
    model = build_model(cfg, seed)
    save_model(model, out, dtype, case.get("save", {}))
    if case.get("keep_saved_config"):
        with open(os.path.join(out, "config.json")) as f:
            print(f"{name}: config.json as saved by transformers {transformers.__version__}:\n{f.read()}")
    else:
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")

    ref = load_reference(out)
    # the folder must reproduce the model exactly (after rounding to the storage dtype)
    want = {k: (v.to(torch.bfloat16) if dtype == "bfloat16" else v).float() for k, v in model.state_dict().items()}
    got = ref.state_dict()
    for k, v in want.items():
        if not torch.equal(got[k].cpu(), v):
            raise AssertionError(f"{name}: {k} differs after reloading the saved folder")
    if cfg.get("tie_word_embeddings") and ref.lm_head.weight.data_ptr() != ref.model.embed_tokens.weight.data_ptr():
        raise AssertionError(f"{name}: lm_head is not tied after reloading")
    files = os.listdir(out)
    if "save" in case:
        shards = [f for f in files if re.match(r"model-\d+-of-\d+\.safetensors$", f)]
        if len(shards) < 2 or "model.safetensors.index.json" not in files:
            raise AssertionError(f"{name}: expected >= 2 shards and an index, got {files}")

    vocab = cfg["vocab_size"]
    tokens, margins = choose_tokens(ref, vocab, seed + 1)
    logits = logits_of(ref, tokens)
    assert logits.shape == (N_TOKENS, vocab), logits.shape
    assert np.isfinite(logits).all()

    meta = {
        "name": name,
        "architecture": cfg["architectures"][0],
        "covers": case["covers"],
        "storage_dtype": dtype,
        "reference": "transformers AutoModelForCausalLM.from_pretrained(folder, dtype=float32, "
        "attn_implementation='eager') on the GPU, TF32 off, logits for every position",
        "n_tokens": N_TOKENS,
        "vocab_size": vocab,
        "tolerance_rel_l2": 1e-3,
        "seed": seed,
        "min_top1_margin_in_row_std": round(min(margins), 4),
        **versions(),
    }
    # the reference's own rounding noise: float32 against float64
    ref64 = copy.deepcopy(ref).double()
    ids = torch.tensor([tokens], device=DEVICE)
    with torch.no_grad():
        l64 = ref64(input_ids=ids, use_cache=False).logits[0].cpu().numpy()
    meta["float32_vs_float64_rel_l2"] = rel_l2(logits, l64)
    del ref64
    abl = {}
    if dtype == "bfloat16":
        abl["weights_before_bf16_rounding"] = rel_l2(logits_of(model.to(DEVICE), tokens), logits)
    for aname, spec in case.get("ablations", {}).items():
        m = ablate(ref, spec)
        abl[aname] = rel_l2(logits_of(m, tokens), logits)
        del m
    if abl:
        meta["ablations_rel_l2"] = abl
    write_case_files(out, tokens, logits, meta)
    print(f"{name}: {meta['bytes_without_meta']} bytes, min margin {meta['min_top1_margin_in_row_std']}, "
          f"f32/f64 {meta['float32_vs_float64_rel_l2']:.2e}, ablations {abl}", flush=True)
    return meta


def run_cases(argv, doc, cases, make, seed_base):
    """ROOT [NAME...]: makes every case (or the named ones) under ROOT with make(case, root,
    seed); reports every failure, then fails. Shared with make_quant_fixtures.py."""
    if not argv:
        print(doc)
        return 2
    root = argv[0]
    only = set(argv[1:])
    os.makedirs(root, exist_ok=True)
    failed = []
    for i, case in enumerate(cases):
        if only and case["name"] not in only:
            continue
        try:
            make(case, root, seed_base + i)
        except Exception:  # report every case, then fail
            traceback.print_exc()
            failed.append(case["name"])
    if failed:
        print("FAILED: " + " ".join(failed), flush=True)
    return 1 if failed else 0


def main(argv):
    return run_cases(argv, __doc__, CASES, make_case, 1000)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
