#!/usr/bin/python3
"""Mutation fuzzing of kiln's Jinja interpreter against Python's Jinja2.

  fuzz_chat_templates.py make SEED N OUT.json     N mutated templates (cases for --batch)
  fuzz_chat_templates.py compare CASES EXPECTED GOT
      one TAP line: every case must agree (same text, or both fail), except where Jinja2
      prints a Python object's repr with an address (<function ...>, <generator ...>), which
      kiln cannot reproduce; those are counted and left out.

The mutations (cut, insert a Jinja token, duplicate or move a span) start from the real
templates of tests/fixtures/chat-templates and the snippets of tests/fixtures/jinja-features.json,
so most cases are broken templates: both must fail, and neither may crash or hang.
"""
import glob
import json
import os
import random
import sys

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
TOKENS = ["{%", "%}", "{{", "}}", "{#", "#}", "-", "+", "(", ")", "[", "]", "{", "}", "|", ".",
          "'", '"', ",", ":", " if ", " else ", " for ", " in ", " not ", " and ", "loop", "x",
          "1", "0.5", " is ", "none", "~", "*", "**", "//", "%", "\\", "\n", "endif", "endfor",
          "set ", "macro ", "caller()", "range(", "|tojson", "|length", "[::-1]", "[1:]",
          "namespace(", "raise_exception("]


def mutate(rng, s):
    for _ in range(rng.randint(1, 4)):
        p = rng.randint(0, len(s))
        op = rng.random()
        if op < 0.3:
            s = s[:p] + s[min(len(s), p + rng.randint(1, 30)):]
        elif op < 0.6:
            s = s[:p] + rng.choice(TOKENS) + s[p:]
        elif op < 0.8:
            q = min(len(s), p + rng.randint(1, 60))
            s = s[:p] + s[p:q] + s[p:]
        else:
            q = rng.randint(0, len(s))
            s = s[:p] + s[q:q + 40] + s[p:]
    return s


def make(seed, n, out_path):
    rng = random.Random(seed)
    sources = []
    for path in sorted(glob.glob(os.path.join(FIXTURES, "chat-templates", "*.jinja"))):
        with open(path, encoding="utf-8") as f:
            sources.append(f.read())
    with open(os.path.join(FIXTURES, "jinja-features.json"), encoding="utf-8") as f:
        sources += [feat["template"] for feat in json.load(f)]
    with open(os.path.join(FIXTURES, "chat-conversations.json"), encoding="utf-8") as f:
        conversations = json.load(f)
    cases = []
    for i in range(n):
        conv = rng.choice(conversations)
        cases.append({"template": "fuzz %d" % i, "conversation": conv["name"],
                      "template_source": mutate(rng, rng.choice(sources)),
                      "messages": conv["messages"], "tools": conv.get("tools"),
                      "add_generation_prompt": True, "kwargs": conv.get("kwargs", {})})
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False)


def compare(cases_path, expected_path, got_path):
    with open(cases_path, encoding="utf-8") as f:
        cases = json.load(f)
    with open(expected_path, encoding="utf-8") as f:
        expected = json.load(f)
    with open(got_path, encoding="utf-8") as f:
        got = json.load(f)
    if len(got) != len(cases):
        print("not ok - fuzzed templates: %d cases but kiln returned %d results" % (len(cases), len(got)))
        return
    reprs = ("<function", "<generator", "<class", "<built-in", "range(", "<bound method")
    skipped, bad, raised = 0, [], 0
    for case, exp, out in zip(cases, expected, got):
        if "text" in exp and (any(r in exp["text"] for r in reprs) or "\0" in exp["text"]):
            skipped += 1  # an address kiln cannot print, or a NUL kiln refuses to put in a prompt
        elif "error" in exp and "error" in out:
            raised += 1
        elif exp.get("text") != out.get("text") or ("error" in exp) != ("error" in out):
            bad.append("%s (%s): Jinja2 %s, kiln %s" % (
                case["template"], json.dumps(case["template_source"][:80]),
                json.dumps(exp)[:100], json.dumps(out)[:100]))
    if bad:
        print("not ok - fuzzed templates: %d of %d disagree with Jinja2: %s"
              % (len(bad), len(cases), " | ".join(bad[:3])))
    else:
        print("ok - fuzzed templates: %d agree with Jinja2 (%d fail in both), %d left out "
              "(Python object reprs, NUL)" % (len(cases) - skipped, raised, skipped))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        compare(sys.argv[2], sys.argv[3], sys.argv[4])
