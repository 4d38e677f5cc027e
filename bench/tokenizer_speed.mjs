// tokenizer_speed.mjs — the JS reference side of bench/tokenizer_speed: encodes a text file
// with @huggingface/tokenizers and prints one JSON line {"mb_per_s", "cpu_mb_per_s", "tokens",
// "load_s"} (speeds: best of REPEATS, by wall-clock and by process CPU time).
// usage: node bench/tokenizer_speed.mjs MODEL_DIR TEXT_FILE [REPEATS]
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { Tokenizer } = await import(
  path.join(root, "tests/node/node_modules/@huggingface/tokenizers/dist/tokenizers.mjs")
);
const [dir, file, repeats = "3"] = process.argv.slice(2);
const text = fs.readFileSync(file, "utf8");
const bytes = Buffer.byteLength(text, "utf8");
let t0 = performance.now();
const tok = new Tokenizer(
  JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8")),
  JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")),
);
const load_s = (performance.now() - t0) / 1000;
let best = Infinity, bestCpu = Infinity, tokens = 0;
for (let r = 0; r < Number(repeats); r++) {
  t0 = performance.now();
  const c0 = process.cpuUsage();
  tokens = tok.encode(text, { add_special_tokens: false }).ids.length;
  best = Math.min(best, (performance.now() - t0) / 1000);
  const c = process.cpuUsage(c0); // microseconds, user + system (includes GC threads)
  bestCpu = Math.min(bestCpu, (c.user + c.system) / 1e6);
}
console.log(JSON.stringify({ mb_per_s: bytes / 1e6 / best, cpu_mb_per_s: bytes / 1e6 / bestCpu, tokens, load_s }));
