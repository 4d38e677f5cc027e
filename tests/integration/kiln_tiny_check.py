#!/usr/bin/env python3
"""Checks kiln-tiny's committed training artefacts: the held-out evaluation set
(tests/fixtures/kiln-tiny-heldout.json), the tokenizer and chat template files in tools/kiln-tiny-hf/,
and that tools/train_kiln_tiny.py's data generator never produces a held-out addition.

Independent references: the arithmetic is recomputed here; the chat template is rendered with
Jinja2 (as transformers does) and compared with ChatML text written out below; the training script
is imported to regenerate its held-out set and its dialogues. Prints TAP-like ok / not ok lines.
Needs only Python 3 and Jinja2 (Debian's python3-jinja2)."""
import json
import os
import random
import re
import sys

ROOT = sys.argv[1]
HF = os.path.join(ROOT, "tools", "kiln-tiny-hf")
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.dont_write_bytecode = True
import train_kiln_tiny as T  # noqa: E402  (plain Python at import time)


def check(name, cond, why=""):
    print(("ok - " if cond else "not ok - ") + name + ("" if cond or not why else ": " + why))


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


items = load(os.path.join(ROOT, "tests", "fixtures", "kiln-tiny-heldout.json"))["items"]
adds = [i for i in items if i["category"] == "addition"]
pairs = {(min(i["a"], i["b"]), max(i["a"], i["b"])) for i in adds}
check("heldout: 200 additions of distinct two-digit pairs",
      len(adds) == 200 and len(pairs) == 200 and all(10 <= i["a"] <= 99 and 10 <= i["b"] <= 99 for i in adds))
check("heldout: additions are held out and their sums right",
      all(i["held_out"] and i["expected"] == str(i["a"] + i["b"]) and i["answer"] == f"{i['a']} + {i['b']} = {i['a'] + i['b']}."
          for i in adds))
phrasings = ["What is {a} + {b}?", "{a}+{b}=?", "Compute {a} plus {b}."]
check("heldout: additions use the three evaluation phrasings",
      all(any(p.format(a=i["a"], b=i["b"]) == i["prompt"] for p in phrasings) for i in adds))
expect = {
    "subtraction": lambda i: i["a"] - i["b"],
    "multiplication": lambda i: i["a"] * i["b"],
    "comparison": lambda i: (min if "smaller" in i["prompt"] else max)(i["a"], i["b"]),
    "counting": lambda i: i["word"].count(i["letter"]),
}
bad = [i for i in items if i["category"] in expect and i["expected"] != str(expect[i["category"]](i))]
check("heldout: other tasks' expected answers are right", not bad and len(items) > 600, repr(bad[:2]))
check("heldout: every expected number appears in its answer",
      all(T.number_in(i["answer"], i["expected"]) for i in items))

log = load(os.path.join(HF, "train_log.json"))
s = log["settings"]
_, regenerated = T.make_heldout(s["heldout_seed"], 200, s["eval_other"], ["strawberry"])
check("heldout: the training script regenerates the same additions",
      [(i["a"], i["b"], i["prompt"]) for i in regenerated if i["category"] == "addition"]
      == [(i["a"], i["b"], i["prompt"]) for i in adds])

maker = T.TaskMaker(random.Random(7), pairs, ["strawberry", "banana", "apple"])
leaks, n_add = 0, 0
for _ in range(30000):
    for m in maker.dialogue():
        g = re.fullmatch(r"(\d+) \+ (\d+) = (\d+)\.", m["content"]) if m["role"] == "assistant" else None
        if g:
            a, b = int(g.group(1)), int(g.group(2))
            n_add += 1
            leaks += (min(a, b), max(a, b)) in pairs
check("generator: no held-out addition among %d generated additions" % n_add, n_add > 10000 and leaks == 0,
      "%d leaks" % leaks)

try:
    import jinja2
except ImportError:
    jinja2 = None
tc = load(os.path.join(HF, "tokenizer_config.json"))
msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 27 + 38?"},
        {"role": "assistant", "content": "27 + 38 = 65."}, {"role": "user", "content": "Thanks!"}]
chatml = ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 27 + 38?<|im_end|>\n"
          "<|im_start|>assistant\n27 + 38 = 65.<|im_end|>\n<|im_start|>user\nThanks!<|im_end|>\n")
if jinja2 is None:
    check("chat template: jinja2 available", False, "install python3-jinja2")
else:
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)  # transformers' settings
    tmpl = env.from_string(tc["chat_template"])
    check("chat template: ChatML with generation prompt",
          tmpl.render(messages=msgs, add_generation_prompt=True) == chatml + "<|im_start|>assistant\n")
    check("chat template: ChatML without generation prompt",
          tmpl.render(messages=msgs, add_generation_prompt=False) == chatml)
    check("chat template: equals the training format",
          "".join(t for t, _ in T.render_segments(msgs)) == chatml)
check("tokenizer_config: eos <|im_end|>, pad <|endoftext|>, no bos",
      tc["eos_token"] == "<|im_end|>" and tc["pad_token"] == "<|endoftext|>" and tc["bos_token"] is None)

tj = load(os.path.join(HF, "tokenizer.json"))
cfg = load(os.path.join(HF, "config.json"))
gen = load(os.path.join(HF, "generation_config.json"))
specials = {t["content"]: t["id"] for t in tj["added_tokens"] if t["special"]}
check("tokenizer: special tokens", specials == {"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2})
vocab = tj["model"]["vocab"]
check("tokenizer: byte-level BPE of at most 8192 entries, as many as config's vocab_size",
      tj["model"]["type"] == "BPE" and tj["decoder"]["type"] == "ByteLevel"
      and len(vocab) == cfg["vocab_size"] <= 8192)
check("tokenizer: no merged token holds a digit (digits stay single tokens)",
      not [t for t in vocab if len(t) > 1 and re.search(r"[0-9]", t)])
eos = gen["eos_token_id"] if isinstance(gen["eos_token_id"], list) else [gen["eos_token_id"]]
check("generation_config: <|im_end|> ends generation", 2 in eos)
h, L, f, V = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"], cfg["vocab_size"]
kv = cfg["num_key_value_heads"] * cfg["head_dim"]
params = V * h + L * (2 * h * h + 2 * h * kv + 3 * h * f + 2 * h) + h
check("config: tied LlamaForCausalLM of at most 20M parameters (%d)" % params,
      cfg["architectures"] == ["LlamaForCausalLM"] and cfg["tie_word_embeddings"] and params <= 20_000_000
      and params == log["parameters"])
ev = load(os.path.join(HF, "eval.json"))
check("eval: recorded held-out addition accuracy >= 95%",
      ev["addition_heldout_unbatched"]["n"] == 200 and ev["addition_heldout_unbatched"]["contains_accuracy"] >= 0.95)
