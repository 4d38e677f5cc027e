#!/usr/bin/python3
"""Reference renderer for kiln's chat-template tests: Python's Jinja2 set up the way
transformers' apply_chat_template sets it up (chat_template_utils._compile_jinja_template):
an ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, the loopcontrols
extension, a {% generation %} block that just renders its body, a tojson filter that is
json.dumps(ensure_ascii=False, ...), and the globals raise_exception and strftime_now.

  render_template.py CASES.json          -> JSON list of {"text": ...} or {"error": ...}
  render_template.py --one MODEL MESSAGES.json [--tools F] [--no-generation-prompt]
                     [--kwargs JSON] [--chat-template FILE]   -> the prompt on stdout

CASES.json is the list `kiln template --batch` reads: {"model", "chat_template" (a file) or
"template_source",
"messages", "tools", "add_generation_prompt", "kwargs"}.
Run with Debian's /usr/bin/python3 (python3-jinja2).
"""
import json
import os
import sys
from datetime import datetime

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment


class GenerationBlock(jinja2.ext.Extension):
    """{% generation %}...{% endgeneration %}: transformers tracks assistant spans here;
    for the rendered text only the body matters."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        call = self.call_method("_render_body")
        return jinja2.nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _render_body(self, caller):
        return caller()


def _raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers replaces Jinja's tojson (which escapes HTML) with plain json.dumps
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent,
                      separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt):
    return datetime.now().strftime(fmt)


_compiled = {}


def compile_template(source):
    # like transformers (lru_cache on _compile_jinja_template): compile each source once
    if source in _compiled:
        return _compiled[source]
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True,
        extensions=[GenerationBlock, jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    _compiled[source] = env.from_string(source)
    return _compiled[source]


SPECIAL = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
           "mask_token"]


def _token_text(v):
    if isinstance(v, dict):
        v = v.get("content")
    return v if isinstance(v, str) else None


def load_model(model, template_file, template_source=None):
    """Returns (templates: {name: source}, special-token variables)."""
    cfg = {}
    jinja_file = None
    if model and os.path.isdir(model):
        path = os.path.join(model, "tokenizer_config.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                cfg = json.load(f)
        if os.path.exists(os.path.join(model, "chat_template.jinja")):
            jinja_file = os.path.join(model, "chat_template.jinja")
    tokens = {}
    for name in SPECIAL:
        t = _token_text(cfg.get(name))
        if t is not None:
            tokens[name] = t
    extra = cfg.get("additional_special_tokens")
    if isinstance(extra, list):
        tokens["additional_special_tokens"] = [t for t in map(_token_text, extra) if t is not None]
    if template_source is not None:
        return {"default": template_source}, tokens
    source = template_file or jinja_file
    if source:
        with open(source, encoding="utf-8", newline="") as f:
            return {"default": f.read()}, tokens
    tpl = cfg.get("chat_template")
    if tpl is None:
        raise ValueError("no chat template")
    if isinstance(tpl, str):
        return {"default": tpl}, tokens
    return {t["name"]: t["template"] for t in tpl}, tokens


def render(templates, tokens, messages, tools, add_generation_prompt, kwargs):
    if tools is not None and "tool_use" in templates:
        source = templates["tool_use"]
    elif "default" in templates:
        source = templates["default"]
    else:
        raise ValueError("no default template")
    variables = dict(tokens)
    variables.update(kwargs or {})
    return compile_template(source).render(
        messages=messages, tools=tools, documents=None,
        add_generation_prompt=add_generation_prompt,
        **{k: v for k, v in variables.items()
           if k not in ("messages", "tools", "documents", "add_generation_prompt")})


def run_cases(path):
    with open(path, encoding="utf-8") as f:
        cases = json.load(f)
    cache = {}
    out = []
    for case in cases:
        key = (case.get("model"), case.get("chat_template"), case.get("template_source"))
        try:
            if key not in cache:
                try:
                    cache[key] = load_model(*key)
                except Exception as e:  # noqa: BLE001 - any failure is a failed case
                    cache[key] = e
            loaded = cache[key]
            if isinstance(loaded, Exception):
                raise loaded
            agp = case.get("add_generation_prompt", True)
            text = render(*loaded, case["messages"], case.get("tools"), agp, case.get("kwargs"))
            out.append({"text": text})
        except Exception as e:  # noqa: BLE001
            out.append({"error": "%s: %s" % (type(e).__name__, e)})
    json.dump(out, sys.stdout, ensure_ascii=True, indent=1)


def run_one(argv):
    model, messages_path = argv[0], argv[1]
    tools = kwargs = template_file = None
    agp = True
    i = 2
    while i < len(argv):
        if argv[i] == "--tools":
            with open(argv[i + 1], encoding="utf-8") as f:
                tools = json.load(f)
            i += 2
        elif argv[i] == "--kwargs":
            kwargs = json.loads(argv[i + 1])
            i += 2
        elif argv[i] == "--chat-template":
            template_file = argv[i + 1]
            i += 2
        elif argv[i] == "--no-generation-prompt":
            agp = False
            i += 1
        else:
            raise SystemExit("unknown argument " + argv[i])
    with open(messages_path, encoding="utf-8") as f:
        messages = json.load(f)
    if isinstance(messages, dict):
        if tools is None:
            tools = messages.get("tools")
        messages = messages["messages"]
    templates, tokens = load_model(model, template_file)
    sys.stdout.write(render(templates, tokens, messages, tools, agp, kwargs))


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--one":
        run_one(sys.argv[2:])
    elif len(sys.argv) == 2:
        run_cases(sys.argv[1])
    else:
        raise SystemExit(__doc__)
