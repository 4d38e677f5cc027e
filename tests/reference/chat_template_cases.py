#!/usr/bin/python3
"""Builds and checks kiln's chat-template comparison (tests/integration/test_chat_templates.sh).

  chat_template_cases.py build NODE_MODULES OUT.json   every template x every conversation,
      and each snippet of tests/fixtures/jinja-features.json
  chat_template_cases.py compare CASES.json EXPECTED.json GOT.json
      prints one TAP line per template: ok when every conversation renders to the same
      bytes as Jinja2 (render_template.py), or fails in both where the template raises.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures")


def build(node_modules, out_path):
    with open(os.path.join(FIXTURES, "chat-templates", "manifest.json")) as f:
        manifest = json.load(f)
    with open(os.path.join(FIXTURES, "chat-conversations.json"), encoding="utf-8") as f:
        conversations = json.load(f)
    cases = []
    for t in manifest:
        model = os.path.join(node_modules, t["model"], "models") if t.get("model") else None
        tpl = os.path.join(FIXTURES, "chat-templates", t["file"]) if t.get("file") else None
        for conv in conversations:
            kwargs = dict(t.get("kwargs", {}))
            kwargs.update(conv.get("kwargs", {}))
            cases.append({
                "template": t["name"], "conversation": conv["name"], "model": model,
                "chat_template": tpl, "messages": conv["messages"], "tools": conv.get("tools"),
                "add_generation_prompt": conv.get("add_generation_prompt", True),
                "kwargs": kwargs})
    # Jinja features one by one: each snippet is its own "template" with one conversation
    with open(os.path.join(FIXTURES, "jinja-features.json"), encoding="utf-8") as f:
        features = json.load(f)
    sample = next(c for c in conversations if c["name"] == "multi-turn")
    for i, feat in enumerate(features):
        cases.append({
            "template": "feature %d %s" % (i, json.dumps(feat["template"][:40])),
            "conversation": "multi-turn", "model": None, "template_source": feat["template"],
            "messages": sample["messages"], "tools": None, "add_generation_prompt": True,
            "kwargs": feat["vars"]})
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False)


def first_difference(a, b):
    n = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
    return "at char %d: expected %r got %r" % (n, a[max(0, n - 20):n + 40], b[max(0, n - 20):n + 40])


def compare(cases_path, expected_path, got_path):
    with open(cases_path, encoding="utf-8") as f:
        cases = json.load(f)
    with open(expected_path, encoding="utf-8") as f:
        expected = json.load(f)
    with open(got_path, encoding="utf-8") as f:
        got = json.load(f)
    if len(got) != len(cases) or len(expected) != len(cases):
        print("not ok - chat template batch: %d cases, %d expected, %d rendered"
              % (len(cases), len(expected), len(got)))
        return
    by_template = {}
    for case, exp, out in zip(cases, expected, got):
        r = by_template.setdefault(case["template"], {"n": 0, "raised": 0, "bad": []})
        r["n"] += 1
        if "error" in exp and "error" in out:
            r["raised"] += 1
        elif "text" in exp and "text" in out and exp["text"] == out["text"]:
            pass
        elif "error" in exp:
            r["bad"].append("%s: Jinja2 raised (%s) but kiln rendered" % (case["conversation"], exp["error"]))
        elif "error" in out:
            r["bad"].append("%s: kiln failed: %s" % (case["conversation"], out["error"]))
        else:
            r["bad"].append("%s: %s" % (case["conversation"], first_difference(exp["text"], out["text"])))
    for name, r in by_template.items():
        if r["bad"]:
            print("not ok - chat template %s: %d of %d conversations differ from Jinja2: %s"
                  % (name, len(r["bad"]), r["n"], " | ".join(r["bad"][:3])))
        else:
            print("ok - chat template %s: %d conversations match Jinja2 (%d raise in both)"
                  % (name, r["n"], r["raised"]))


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(sys.argv[2], sys.argv[3])
    else:
        compare(sys.argv[2], sys.argv[3], sys.argv[4])
