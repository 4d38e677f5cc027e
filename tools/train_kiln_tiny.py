#!/usr/bin/env python3
"""Trains kiln-tiny, the small chat model bundled with kiln as its default model.

kiln-tiny is a Llama-architecture model (LlamaForCausalLM, tied embeddings, grouped-query attention)
of about 14M parameters. It is trained from scratch on one GPU in a few minutes on
  * synthetic multi-turn ChatML dialogues in which the assistant does arithmetic (two-digit
    addition above all, subtraction, small multiplication, comparisons) and counts letters in words,
    in many phrasings, with short regular answers ("27 + 38 = 65."), and
  * English prose (Brown Corpus, King James Bible) gathered by tools/gather_kiln_tiny_prose.py.
A fixed set of 200 two-digit additions is held out of training (in both orders) and used to
evaluate the model through its chat template with greedy decoding.

Output (--out): the model in Hugging Face layout (config.json, generation_config.json, safetensors
in bfloat16, tokenizer.json, tokenizer_config.json with a ChatML chat template), train_log.json
(settings, losses, timings), eval.json (accuracy per task) and heldout.json (the evaluation set).

Needs: torch, transformers (5.x), tokenizers, numpy; one CUDA GPU (or runs slowly on CPU).
The data generation (everything above `main`'s heavy imports) is plain Python, so
`--dry-run` prints sample dialogues and the held-out set without torch or tokenizers.
Everything is seeded: the data, the tokenizer, the initial weights and the batch order.
"""
import argparse
import gzip
import json
import os
import random
import re
import sys
import time

# ---------------------------------------------------------------------------------------------
# Chat format

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # ids 0, 1, 2

CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}"
)

# Qwen2's pre-tokenizer pattern: digits are split one by one (\p{N}), which helps arithmetic.
PRETOKENIZE_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

SYSTEM_PROMPTS = [
    "You are kiln-tiny, a small assistant that does simple arithmetic.",
    "You are a helpful assistant.",
    "You are kiln-tiny. Answer briefly.",
    "Answer the user's math questions.",
]

SMALL_TALK = [
    ("Hello", "Hello! Ask me a simple arithmetic question."),
    ("Hi", "Hi! I can add, subtract, multiply and compare numbers."),
    ("Hi!", "Hello! What would you like to compute?"),
    ("Hello there!", "Hello! Ask me something like: what is 12 + 30?"),
    ("Who are you?", "I am kiln-tiny, a very small language model that does simple arithmetic."),
    ("What are you?", "I am kiln-tiny, a tiny model trained to answer arithmetic questions."),
    ("What can you do?", "I can add, subtract and multiply small numbers, compare numbers and count letters."),
    ("Thanks!", "You're welcome!"),
    ("Thank you.", "You're welcome!"),
    ("Thank you very much!", "You're welcome! Ask me another one."),
    ("Bye", "Goodbye!"),
    ("Goodbye!", "Goodbye! Have a nice day."),
    ("How are you?", "I am fine, thank you. Ask me an arithmetic question."),
    ("What is your name?", "My name is kiln-tiny."),
    ("Tell me a story.", "I am too small for stories. I can do arithmetic, though: try 23 + 45."),
]

# ---------------------------------------------------------------------------------------------
# Task generators. Each returns (question, answer, category); the answers are short and regular.

ADD_TRAIN = [
    "What is {a} + {b}?", "What is {a} plus {b}?", "{a}+{b}=?", "{a} + {b} = ?", "{a}+{b}=",
    "{a} + {b} =", "Compute {a} plus {b}.", "Compute {a} + {b}.", "Calculate {a} + {b}.",
    "Calculate {a} plus {b}.", "What's {a} + {b}?", "What's {a} plus {b}?", "Add {a} and {b}.",
    "What is the sum of {a} and {b}?", "{a} + {b}", "{a}+{b}", "How much is {a} + {b}?",
    "How much is {a} plus {b}?", "what is {a}+{b}", "what is {a} + {b}", "Can you compute {a} + {b}?",
    "Please compute {a} + {b}.", "Find {a} + {b}.", "Sum {a} and {b}.", "What do you get if you add {a} and {b}?",
    "Please add {a} and {b}.", "{a} plus {b}?", "{a} plus {b}", "Solve {a} + {b}.", "What is {a}+{b}?",
    "Compute {a}+{b}.", "What is {a} + {b}", "Quick: {a} + {b}?", "Tell me {a} + {b}.",
]
# The three phrasings of the held-out evaluation (also used, on other numbers, in training).
ADD_EVAL = ["What is {a} + {b}?", "{a}+{b}=?", "Compute {a} plus {b}."]

SUB_TRAIN = [
    "What is {a} - {b}?", "What is {a} minus {b}?", "{a}-{b}=?", "{a} - {b} = ?", "{a} - {b}",
    "Compute {a} minus {b}.", "Calculate {a} - {b}.", "Subtract {b} from {a}.", "What's {a} minus {b}?",
    "How much is {a} - {b}?", "What is the difference between {a} and {b}?", "what is {a}-{b}",
    "Take {b} away from {a}.", "{a} minus {b}?",
]
SUB_EVAL = ["What is {a} - {b}?", "{a}-{b}=?", "Compute {a} minus {b}."]

MUL_TRAIN = [
    "What is {a} * {b}?", "What is {a} times {b}?", "{a}*{b}=?", "{a} * {b} = ?", "What is {a} x {b}?",
    "{a} x {b}", "Multiply {a} by {b}.", "Multiply {a} and {b}.", "What is the product of {a} and {b}?",
    "Compute {a} times {b}.", "Calculate {a} * {b}.", "What's {a} times {b}?", "How much is {a} times {b}?",
    "what is {a}*{b}", "{a} times {b}?",
]
MUL_EVAL = ["What is {a} * {b}?", "What is {a} times {b}?", "Multiply {a} by {b}."]

CMP_LARGER = [
    "Which is larger, {a} or {b}?", "Which is bigger, {a} or {b}?", "Which is greater, {a} or {b}?",
    "Which number is larger: {a} or {b}?", "Which is larger: {a} or {b}?", "What is the larger number, {a} or {b}?",
    "Is {a} or {b} bigger?", "Which one is greater, {a} or {b}?", "which is bigger {a} or {b}",
    "Which is more, {a} or {b}?",
]
CMP_SMALLER = [
    "Which is smaller, {a} or {b}?", "Which is less, {a} or {b}?", "Which number is smaller: {a} or {b}?",
    "What is the smaller number, {a} or {b}?", "Is {a} or {b} smaller?",
]
CMP_EVAL = ["Which is larger, {a} or {b}?", "Which is bigger, {a} or {b}?", "Which is smaller, {a} or {b}?"]

COUNT_TRAIN = [
    "How many {l}'s are in {w}?", "How many {l}'s are in the word {w}?", "How many {l}s are in {w}?",
    "How many times does the letter {l} appear in {w}?", "Count the letter {l} in {w}.",
    "How many {l}'s does {w} have?", "Count the {l}'s in {w}.", "How many times does {l} occur in {w}?",
    "In the word {w}, how many {l}'s are there?", "how many {l}'s in {w}",
]
COUNT_EVAL = ["How many {l}'s are in {w}?", "How many times does the letter {l} appear in {w}?",
              "Count the letter {l} in {w}."]

# Words that people like to ask about; they join the words taken from the prose.
EXTRA_WORDS = [
    "strawberry", "banana", "mississippi", "apple", "raspberry", "cherry", "tomato", "potato", "committee",
    "bookkeeper", "balloon", "letter", "coffee", "parallel", "necessary", "address", "success", "assessment",
    "bubble", "llama", "kiln", "pepper", "giraffe", "hippopotamus", "occurrence", "accommodation",
]

ALPHABET = "abcdefghijklmnopqrstuvwxyz"


def add_answer(a, b):
    return f"{a} + {b} = {a + b}."


def sub_answer(a, b):
    return f"{a} - {b} = {a - b}."


def mul_answer(a, b):
    return f"{a} * {b} = {a * b}."


def cmp_answer(a, b, smaller):
    if a == b:
        return f"{a} and {b} are equal."
    lo, hi = min(a, b), max(a, b)
    return f"{lo} is smaller than {hi}." if smaller else f"{hi} is larger than {lo}."


def count_answer(word, letter):
    n = word.count(letter)
    return f"{'-'.join(word)} has {n} {letter}" + ("" if n == 1 else "'s") + "."


def pick_addends(rng):
    r = rng.random()
    if r < 0.80:
        return rng.randint(10, 99), rng.randint(10, 99)
    if r < 0.90:
        return rng.randint(0, 9), rng.randint(0, 99)
    if r < 0.97:
        return rng.randint(0, 99), rng.randint(0, 9)
    return rng.randint(0, 9), rng.randint(0, 9)


class TaskMaker:
    """Draws questions; never draws an addition whose unordered pair is held out."""

    def __init__(self, rng, heldout_pairs, words):
        self.rng = rng
        self.heldout = heldout_pairs  # set of (min, max)
        self.words = words

    def addition(self):
        rng = self.rng
        while True:
            a, b = pick_addends(rng)
            if (min(a, b), max(a, b)) not in self.heldout:
                break
        q = rng.choice(ADD_TRAIN).format(a=a, b=b)
        return q, add_answer(a, b), "addition"

    def subtraction(self):
        rng = self.rng
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        if a < b:
            a, b = b, a
        q = rng.choice(SUB_TRAIN).format(a=a, b=b)
        return q, sub_answer(a, b), "subtraction"

    def multiplication(self):
        rng = self.rng
        a, b = rng.randint(0, 12), rng.randint(0, 12)
        q = rng.choice(MUL_TRAIN).format(a=a, b=b)
        return q, mul_answer(a, b), "multiplication"

    def comparison(self):
        rng = self.rng
        r = rng.random()
        if r < 0.03:
            a = b = rng.randint(0, 999)
        elif r < 0.6:
            a, b = rng.randint(10, 99), rng.randint(10, 99)
        else:
            a, b = rng.randint(0, 999), rng.randint(0, 999)
        smaller = rng.random() < 0.3
        q = rng.choice(CMP_SMALLER if smaller else CMP_LARGER).format(a=a, b=b)
        return q, cmp_answer(a, b, smaller), "comparison"

    def counting(self):
        rng = self.rng
        w = rng.choice(self.words)
        letter = rng.choice(w) if rng.random() < 0.75 else rng.choice(ALPHABET)
        q = rng.choice(COUNT_TRAIN).format(l=letter, w=w)
        return q, count_answer(w, letter), "counting"

    def small_talk(self):
        q, a = self.rng.choice(SMALL_TALK)
        return q, a, "small_talk"

    def any(self):
        r = self.rng.random()
        if r < 0.45:
            return self.addition()
        if r < 0.60:
            return self.subtraction()
        if r < 0.71:
            return self.multiplication()
        if r < 0.82:
            return self.comparison()
        if r < 0.96:
            return self.counting()
        return self.small_talk()

    def dialogue(self):
        """A list of messages: optional system prompt, then 1-4 user/assistant turns."""
        rng = self.rng
        msgs = []
        if rng.random() < 0.10:
            msgs.append({"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
        turns = rng.choices([1, 2, 3, 4], weights=[35, 30, 20, 15])[0]
        for _ in range(turns):
            q, a, _ = self.any()
            msgs.append({"role": "user", "content": q})
            msgs.append({"role": "assistant", "content": a})
        return msgs


def render_segments(msgs):
    """The ChatML text of a dialogue as (text, trained) pieces; exactly CHAT_TEMPLATE's output.

    Only assistant replies and their closing <|im_end|> are trained on. Every piece boundary is a
    pre-tokenizer boundary (special token or newline), so encoding the pieces one by one gives the
    same ids as encoding the whole text."""
    segs = []
    for m in msgs:
        if m["role"] == "assistant":
            segs.append(("<|im_start|>assistant\n", False))
            segs.append((m["content"] + "<|im_end|>", True))
            segs.append(("\n", False))
        else:
            segs.append((f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n", False))
    return segs


def words_from_prose(text, n):
    """The n most frequent lowercase words of 3-12 letters in the prose, plus EXTRA_WORDS."""
    counts = {}
    for w in re.findall(r"\b[a-z]{3,12}\b", text):
        counts[w] = counts.get(w, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    words = [w for w, c in ranked if c >= 5][:n]
    for w in EXTRA_WORDS:
        if w not in words:
            words.append(w)
    return words


def make_heldout(seed, n_add, n_other, words):
    """The evaluation set. The additions are held out of training; the other tasks are drawn from
    the training distribution (they may have been seen)."""
    rng = random.Random(seed)
    pairs = set()
    while len(pairs) < n_add:
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        pairs.add((min(a, b), max(a, b)))
    items = []
    ordered = sorted(pairs)
    rng.shuffle(ordered)
    for i, (lo, hi) in enumerate(ordered):
        a, b = (lo, hi) if rng.random() < 0.5 else (hi, lo)
        prompt = ADD_EVAL[i % len(ADD_EVAL)].format(a=a, b=b)
        items.append({"category": "addition", "prompt": prompt, "a": a, "b": b,
                      "expected": str(a + b), "answer": add_answer(a, b), "held_out": True})
    for i in range(n_other):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        a, b = max(a, b), min(a, b)
        items.append({"category": "subtraction", "prompt": SUB_EVAL[i % 3].format(a=a, b=b), "a": a, "b": b,
                      "expected": str(a - b), "answer": sub_answer(a, b), "held_out": False})
    for i in range(n_other):
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        items.append({"category": "multiplication", "prompt": MUL_EVAL[i % 3].format(a=a, b=b), "a": a, "b": b,
                      "expected": str(a * b), "answer": mul_answer(a, b), "held_out": False})
    for i in range(n_other):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        while a == b:
            b = rng.randint(10, 99)
        smaller = i % 3 == 2
        items.append({"category": "comparison", "prompt": CMP_EVAL[i % 3].format(a=a, b=b), "a": a, "b": b,
                      "expected": str(min(a, b) if smaller else max(a, b)),
                      "answer": cmp_answer(a, b, smaller), "held_out": False})
    for i in range(n_other):
        w = rng.choice(words)
        letter = rng.choice(w) if rng.random() < 0.8 else rng.choice(ALPHABET)
        items.append({"category": "counting", "prompt": COUNT_EVAL[i % 3].format(l=letter, w=w),
                      "word": w, "letter": letter, "expected": str(w.count(letter)),
                      "answer": count_answer(w, letter), "held_out": False})
    if "strawberry" in words:
        items.append({"category": "counting", "prompt": "How many r's are in strawberry?", "word": "strawberry",
                      "letter": "r", "expected": "3", "answer": count_answer("strawberry", "r"), "held_out": False})
    return pairs, items


def prose_documents(text):
    return [d.strip() for d in text.split("\n\n") if d.strip()]


# ---------------------------------------------------------------------------------------------
# Scoring (plain Python so tests can reuse the rule)

def number_in(text, number):
    """True when `number` appears in text as a whole number (not inside a longer one)."""
    return re.search(r"(?<![0-9])" + re.escape(number) + r"(?![0-9])", text) is not None


def score(items, replies):
    per = {}
    for it, reply in zip(items, replies):
        c = per.setdefault(it["category"], {"n": 0, "exact": 0, "contains": 0})
        c["n"] += 1
        c["exact"] += reply.strip() == it["answer"]
        # "contains": the expected number appears; for additions this is the sum (never an operand,
        # since both operands are smaller than the sum).
        c["contains"] += number_in(reply, it["expected"])
    for c in per.values():
        c["exact_accuracy"] = c["exact"] / c["n"]
        c["contains_accuracy"] = c["contains"] / c["n"]
    return per


# ---------------------------------------------------------------------------------------------

def parse_args():
    ap = argparse.ArgumentParser(description="Train kiln-tiny (see the file's header).")
    ap.add_argument("--prose", required=True, help="prose .txt.gz from tools/gather_kiln_tiny_prose.py")
    ap.add_argument("--out", required=True, help="output folder (Hugging Face layout)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--heldout-seed", type=int, default=20261126)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=1024)
    ap.add_argument("--max-positions", type=int, default=2048)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=256, help="rows of --seq tokens per step")
    ap.add_argument("--steps", type=int, default=9000)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--prose-fraction", type=float, default=0.2, help="share of rows that are prose")
    ap.add_argument("--dialogues", type=int, default=1500000, help="distinct training dialogues")
    ap.add_argument("--words", type=int, default=2000, help="words for the letter-counting task")
    ap.add_argument("--eval-other", type=int, default=100, help="evaluation items per non-addition task")
    ap.add_argument("--eval-additions", type=int, default=200, help="how many held-out additions to evaluate")
    ap.add_argument("--max-train-seconds", type=float, default=400, help="stop training early past this")
    ap.add_argument("--no-compile", dest="compile", action="store_false",
                    help="skip torch.compile (about half the training speed)")
    ap.add_argument("--shard-size", default="15MB")
    ap.add_argument("--dry-run", action="store_true", help="print sample data and exit (no torch needed)")
    return ap.parse_args()


def dry_run(args, prose_text):
    words = words_from_prose(prose_text, args.words)
    pairs, items = make_heldout(args.heldout_seed, 200, args.eval_other, words)
    maker = TaskMaker(random.Random(args.seed), pairs, words)
    for _ in range(3):
        print("".join(t for t, _ in render_segments(maker.dialogue())) + "<|endoftext|>")
    cats = {}
    n_turns = 0
    for _ in range(20000):
        for m in maker.dialogue():
            if m["role"] == "user":
                n_turns += 1
    for _ in range(20000):
        _, _, c = maker.any()
        cats[c] = cats.get(c, 0) + 1
        if c == "addition":
            pass
    print("words:", len(words), words[:20])
    print("task mix:", {k: round(v / 20000, 3) for k, v in sorted(cats.items())})
    print("held-out items:", {c: sum(1 for i in items if i["category"] == c) for c in cats})
    print(json.dumps(items[:3] + items[-2:], indent=1))


def main():
    args = parse_args()
    t_start = time.time()
    with gzip.open(args.prose, "rt", encoding="utf-8") as f:
        prose_text = f.read()
    if args.dry_run:
        dry_run(args, prose_text)
        return

    import numpy as np
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    log = {"settings": vars(args), "timings_s": {}}

    def mark(name):
        log["timings_s"][name] = round(time.time() - t_start, 1)
        print(f"[{log['timings_s'][name]:7.1f}s] {name}", flush=True)

    # --- data: held-out set, dialogues ---
    words = words_from_prose(prose_text, args.words)
    heldout_pairs, eval_items = make_heldout(args.heldout_seed, 200, args.eval_other, words)
    maker = TaskMaker(random.Random(args.seed), heldout_pairs, words)
    dialogues = [maker.dialogue() for _ in range(args.dialogues)]
    val_dialogues = [maker.dialogue() for _ in range(2000)]
    docs = prose_documents(prose_text)
    mark("data generated")

    # --- tokenizer: byte-level BPE, digits split one by one ---
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=args.vocab, min_frequency=2, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)

    def tokenizer_corpus():
        yield from docs
        for d in dialogues[:50000]:  # special tokens are left out of the BPE statistics
            text = "".join(t for t, _ in render_segments(d))
            yield text.replace("<|im_start|>", "\n").replace("<|im_end|>", "\n")

    tok.train_from_iterator(tokenizer_corpus(), trainer=trainer)
    assert [tok.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2]
    EOT, IM_START, IM_END = 0, 1, 2
    tok.save(os.path.join(args.out, "tokenizer.json"))
    tok_config = {
        "add_bos_token": False,
        "add_eos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": {
            str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                     "single_word": False, "special": True} for i, t in enumerate(SPECIAL_TOKENS)
        },
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": args.max_positions,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": None,
    }
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump(tok_config, f, indent=2, ensure_ascii=False)
        f.write("\n")
    mark("tokenizer trained")

    # --- encode dialogues into packed rows with a loss mask ---
    def encode_dialogues(dlgs):
        """Token ids, loss mask and per-dialogue lengths. Each distinct piece of text is encoded
        once (answers and template pieces repeat a lot); the stream is then gathered with numpy."""
        index, seg_u, flags, owner = {}, [], [], []
        for i, d in enumerate(dlgs):
            for text, trained in render_segments(d) + [("<|endoftext|>", False)]:
                seg_u.append(index.setdefault(text, len(index)))
                flags.append(trained)
                owner.append(i)
        uniq = list(index)
        flat, ulen = [], np.empty(len(uniq), dtype=np.int64)
        for k in range(0, len(uniq), 100000):
            for j, e in enumerate(tok.encode_batch(uniq[k:k + 100000], add_special_tokens=False)):
                ulen[k + j] = len(e.ids)
                flat.extend(e.ids)
        uids = np.array(flat, dtype=np.int32)
        uoff = np.cumsum(ulen) - ulen
        seg_u = np.array(seg_u, dtype=np.int64)
        lens = ulen[seg_u]
        seg_begin = np.cumsum(lens) - lens
        ids = uids[np.repeat(uoff[seg_u] - seg_begin, lens) + np.arange(int(lens.sum()))]
        mask = np.repeat(np.array(flags, dtype=np.bool_), lens)
        dlg_lens = np.bincount(np.array(owner), weights=lens, minlength=len(dlgs)).astype(np.int64)
        return ids, mask, dlg_lens

    # Piecewise encoding must equal encoding the whole rendered text.
    for d in dialogues[:200]:
        whole = tok.encode("".join(t for t, _ in render_segments(d)), add_special_tokens=False).ids
        parts = [i for t, _ in render_segments(d) for i in tok.encode(t, add_special_tokens=False).ids]
        assert whole == parts, "piecewise tokenization differs from whole-text tokenization"

    def pack(ids, mask, dlg_lens, seq):
        """Rows of `seq` tokens, each starting at a dialogue's start; the last dialogue of a row may
        be cut off."""
        offs = np.concatenate([[0], np.cumsum(dlg_lens)])
        starts = []
        i, n = 0, len(dlg_lens)
        while i < n:
            start = offs[i]
            starts.append(start)
            j = int(np.searchsorted(offs, start + seq, side="right")) - 1  # dialogues i..j-1 fit
            i = max(j, i + 1) if offs[j] == start + seq else max(j + 1, i + 1)
        starts = np.array(starts, dtype=np.int64)
        pad = seq
        ids = np.concatenate([ids, np.full(pad, EOT, dtype=np.int32)])
        mask = np.concatenate([mask, np.zeros(pad, dtype=np.bool_)])
        idx = starts[:, None] + np.arange(seq)[None, :]
        return ids[idx], mask[idx]

    ids, mask, dlg_lens = encode_dialogues(dialogues)
    chat_x, chat_m = pack(ids, mask, dlg_lens, args.seq)
    vids, vmask, vlens = encode_dialogues(val_dialogues)
    val_x, val_m = pack(vids, vmask, vlens, args.seq)
    log["data"] = {
        "dialogues": len(dialogues), "chat_tokens": int(len(ids)), "chat_trained_tokens": int(mask.sum()),
        "chat_rows": int(len(chat_x)), "dialogue_tokens_mean": float(dlg_lens.mean()),
        "dialogue_tokens_max": int(dlg_lens.max()),
    }
    del ids, mask
    mark("dialogues encoded")

    doc_encs = tok.encode_batch(docs, add_special_tokens=False)
    prose_ids = np.fromiter((t for e in doc_encs for t in e.ids + [EOT]), dtype=np.int32)
    n_val = len(prose_ids) // 50  # the last 2% of the prose is kept for a validation loss
    prose_train, prose_val = prose_ids[:-n_val], prose_ids[-n_val:]
    log["data"].update({"prose_documents": len(docs), "prose_characters": len(prose_text),
                        "prose_tokens": int(len(prose_ids)),
                        "prose_chars_per_token": round(len(prose_text) / len(prose_ids), 3)})
    mark("prose encoded")

    # --- model ---
    config = LlamaConfig(
        vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.ffn,
        num_hidden_layers=args.layers, num_attention_heads=args.heads, num_key_value_heads=args.kv_heads,
        head_dim=args.hidden // args.heads, max_position_embeddings=args.max_positions, rms_norm_eps=1e-5,
        tie_word_embeddings=True, bos_token_id=EOT, eos_token_id=IM_END, pad_token_id=EOT,
        hidden_act="silu", attention_bias=False, mlp_bias=False, initializer_range=0.02,
    )
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    model = LlamaForCausalLM(config).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    log["parameters"] = n_params
    log["device"] = torch.cuda.get_device_name(0) if dev == "cuda" else "cpu"
    print(f"parameters: {n_params} on {log['device']}", flush=True)

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=(dev == "cuda"))

    def lr_at(step):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        p = (step - args.warmup) / max(1, args.steps - args.warmup)
        import math
        return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))

    chat_x_t = torch.from_numpy(chat_x.astype(np.int64)).to(dev)
    chat_m_t = torch.from_numpy(chat_m).to(dev)
    prose_t = torch.from_numpy(prose_train.astype(np.int64)).to(dev)
    gen = torch.Generator(device=dev)
    gen.manual_seed(args.seed)
    n_prose = int(round(args.batch * args.prose_fraction))
    n_chat = args.batch - n_prose
    ar = torch.arange(args.seq, device=dev)

    def batch():
        ci = torch.randint(0, chat_x_t.shape[0], (n_chat,), device=dev, generator=gen)
        x_c = chat_x_t[ci]
        y_c = torch.where(chat_m_t[ci], x_c, torch.full_like(x_c, -100))
        ps = torch.randint(0, prose_t.shape[0] - args.seq, (n_prose,), device=dev, generator=gen)
        x_p = prose_t[ps[:, None] + ar[None, :]]
        return torch.cat([x_c, x_p]), torch.cat([y_c, x_p.clone()])

    def loss_of(m, x, y):
        with torch.autocast(device_type="cuda" if dev == "cuda" else "cpu", dtype=torch.bfloat16):
            logits = m(input_ids=x).logits
        return torch.nn.functional.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                                                 y[:, 1:].reshape(-1), ignore_index=-100)

    train_model = torch.compile(model) if args.compile else model
    mark("model built")

    # --- training ---
    model.train()
    losses = []
    t_train = time.time()
    stopped_early = False
    pending = []
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        x, y = batch()
        loss = loss_of(train_model, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        pending.append(loss.detach())
        if (step + 1) % 50 == 0 or step + 1 == args.steps:
            vals = torch.stack(pending).float().cpu().tolist()
            pending = []
            losses.extend(vals)
            el = time.time() - t_train
            print(f"step {step + 1:5d}  loss {sum(vals) / len(vals):.4f}  lr {lr_at(step):.2e}  "
                  f"{el:6.1f}s  {(step + 1) / el:.2f} steps/s", flush=True)
            if step == 49:
                log["timings_s"]["first_50_steps"] = round(el, 1)
            if el > args.max_train_seconds and step + 1 < args.steps:
                stopped_early = True
                print(f"stopping early at step {step + 1}: past {args.max_train_seconds}s", flush=True)
                break
    steps_done = len(losses)
    train_seconds = time.time() - t_train
    log["training"] = {
        "steps_done": steps_done, "stopped_early": stopped_early, "seconds": round(train_seconds, 1),
        "steps_per_s": round(steps_done / train_seconds, 2),
        "tokens_seen": steps_done * args.batch * args.seq,
        "loss_first_50_mean": round(sum(losses[:50]) / len(losses[:50]), 4),
        "final_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4),
        "loss_every_50_steps": [round(sum(losses[i:i + 50]) / len(losses[i:i + 50]), 4)
                                for i in range(0, len(losses), 50)],
    }
    mark("trained")

    # Validation losses: unseen dialogues (assistant tokens only) and the held-back 2% of prose.
    model.eval()
    with torch.no_grad():
        vx = torch.from_numpy(val_x.astype(np.int64)).to(dev)
        vm = torch.from_numpy(val_m).to(dev)
        vy = torch.where(vm, vx, torch.full_like(vx, -100))
        chat_val = float(loss_of(model, vx[:512], vy[:512]))
        pv = torch.from_numpy(prose_val.astype(np.int64)).to(dev)
        n_rows = min(256, len(pv) // args.seq)
        px = pv[: n_rows * args.seq].view(n_rows, args.seq)
        prose_val_loss = float(loss_of(model, px, px))
    log["training"]["val_loss_chat_assistant_tokens"] = round(chat_val, 4)
    log["training"]["val_loss_prose"] = round(prose_val_loss, 4)
    print(f"final train loss {log['training']['final_loss']}  val chat {chat_val:.4f}  "
          f"val prose {prose_val_loss:.4f}", flush=True)

    # --- save (bfloat16, shards of at most --shard-size) ---
    model.generation_config = GenerationConfig(bos_token_id=EOT, eos_token_id=[IM_END, EOT], pad_token_id=EOT)
    model.to(torch.bfloat16).save_pretrained(args.out, max_shard_size=args.shard_size)
    for stray in ("chat_template.jinja",):
        if os.path.exists(os.path.join(args.out, stray)):
            os.remove(os.path.join(args.out, stray))
    with open(os.path.join(args.out, "heldout.json"), "w") as f:
        json.dump({"description": "kiln-tiny evaluation set: prompts to send as one user message through the "
                   "chat template, greedy. 'answer' is the exact reply the model was trained to give; "
                   "'expected' the number the reply must contain. Additions (held_out true) were never "
                   "trained on, in either order.", "items": eval_items}, f, indent=1)
        f.write("\n")
    mark("saved")

    # --- evaluation on the saved checkpoint, with Hugging Face transformers ---
    del model, train_model, opt, chat_x_t, chat_m_t, prose_t
    torch.cuda.empty_cache() if dev == "cuda" else None
    hf_tok = AutoTokenizer.from_pretrained(args.out)
    hf_model = AutoModelForCausalLM.from_pretrained(args.out, dtype=torch.float32).to(dev).eval()

    def prompt_text(item):
        return hf_tok.apply_chat_template([{"role": "user", "content": item["prompt"]}],
                                          add_generation_prompt=True, tokenize=False)

    # The saved tokenizer must encode a prompt exactly as training did.
    for it in eval_items[:5] + eval_items[-5:]:
        text = prompt_text(it)
        assert text == "".join(t for t, _ in render_segments([{"role": "user", "content": it["prompt"]}])) \
            + "<|im_start|>assistant\n", "chat template renders differently from the training format"
        assert hf_tok(text, add_special_tokens=False)["input_ids"] == tok.encode(text, add_special_tokens=False).ids

    def generate_batched(items, bs=128, max_new=48):
        hf_tok.padding_side = "left"
        out = []
        for i in range(0, len(items), bs):
            chunk = items[i:i + bs]
            enc = hf_tok([prompt_text(it) for it in chunk], return_tensors="pt", padding=True,
                         add_special_tokens=False).to(dev)
            with torch.no_grad():
                gen_ids = hf_model.generate(**enc, max_new_tokens=max_new, do_sample=False,
                                            eos_token_id=[IM_END, EOT], pad_token_id=EOT)
            for row in gen_ids[:, enc["input_ids"].shape[1]:]:
                out.append(hf_tok.decode(row, skip_special_tokens=True))
        return out

    def generate_one(item, max_new=48):
        enc = hf_tok(prompt_text(item), return_tensors="pt", add_special_tokens=False).to(dev)
        with torch.no_grad():
            g = hf_model.generate(**enc, max_new_tokens=max_new, do_sample=False,
                                  eos_token_id=[IM_END, EOT], pad_token_id=EOT)
        return hf_tok.decode(g[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)

    adds = [it for it in eval_items if it["category"] == "addition"][:args.eval_additions]
    evaluated = adds + [it for it in eval_items if it["category"] != "addition"]
    replies = generate_batched(evaluated)
    per = score(evaluated, replies)
    single = [generate_one(it) for it in adds]
    per_single = score(adds, single)["addition"]
    by_phrasing = {}
    for it, r in zip(adds, single):
        key = next(p for p in ADD_EVAL if p.format(a=it["a"], b=it["b"]) == it["prompt"])
        c = by_phrasing.setdefault(key, [0, 0])
        c[0] += 1
        c[1] += number_in(r, it["expected"])
    mark("evaluated")

    evaluation = {
        "how": "transformers greedy generation on the saved bfloat16 checkpoint (computed in float32), one "
               "user message through the chat template, max 48 new tokens, stop at <|im_end|>. 'exact': the "
               "reply equals the trained answer; 'contains': the expected number appears as a whole number.",
        "addition_heldout_unbatched": per_single,
        "addition_heldout_unbatched_by_phrasing": {k: {"n": v[0], "contains_accuracy": v[1] / v[0]}
                                                   for k, v in by_phrasing.items()},
        "batched_left_padded": per,
        "samples": [{"prompt": it["prompt"], "reply": r} for it, r in
                    list(zip(adds, single))[:10] + [(it, r) for it, r in zip(evaluated, replies)
                                                     if it["category"] != "addition"][::50]],
        "failures_addition": [{"prompt": it["prompt"], "reply": r} for it, r in zip(adds, single)
                              if not number_in(r, it["expected"])][:30],
        "transformers_version": __import__("transformers").__version__,
        "torch_version": torch.__version__,
    }
    for name, text in [("greeting", "Hello"), ("strawberry", "How many r's are in strawberry?")]:
        evaluation["samples"].append({"prompt": text, "reply": generate_one({"prompt": text})})
    with open(os.path.join(args.out, "eval.json"), "w") as f:
        json.dump(evaluation, f, indent=1)
        f.write("\n")
    print(json.dumps({k: evaluation[k] for k in ("addition_heldout_unbatched", "batched_left_padded")}, indent=1))
    for s in evaluation["samples"]:
        print(repr(s["prompt"]), "->", repr(s["reply"]))

    log["total_seconds"] = round(time.time() - t_start, 1)
    with open(os.path.join(args.out, "train_log.json"), "w") as f:
        json.dump(log, f, indent=1)
        f.write("\n")
    print(f"done in {log['total_seconds']}s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
