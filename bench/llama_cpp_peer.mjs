// llama_cpp_peer.mjs — the peer side of bench/decode_vs_bandwidth.sh: runs llama.cpp (the CPU
// build that node-llama-cpp ships prebuilt, installed under bench/peer/) on a GGUF model the way
// llama-bench does — prefill of P tokens as one batch into an empty context, then N tokens
// decoded one at a time from an empty context — and prints one JSON line per test shaped like
// `kiln bench`'s: {"test":"pp512","tokens_per_s":…} and {"test":"tg128",…}. Best of R passes,
// as llama-bench's figures in docs/PERFORMANCE.md are.
// usage: node bench/llama_cpp_peer.mjs MODEL.gguf [-p 512] [-n 128] [-t THREADS] [-r 2]
import fs from "node:fs";
import path from "node:path";
import os from "node:os";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
let nlc;
try {
  nlc = await import(path.join(here, "peer/node_modules/node-llama-cpp/dist/index.js"));
} catch (e) {
  console.error(`llama_cpp_peer: node-llama-cpp is not installed (make bench-peer): ${e.message}`);
  process.exit(2);
}

const args = process.argv.slice(2);
const opt = (flag, def) => {
  const i = args.indexOf(flag);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const modelPath = args.find((a, i) => !a.startsWith("-") && (i === 0 || !args[i - 1].startsWith("-")));
if (!modelPath) {
  console.error("usage: node bench/llama_cpp_peer.mjs MODEL.gguf [-p 512] [-n 128] [-t THREADS] [-r 2]");
  process.exit(2);
}
if (!fs.existsSync(modelPath)) {
  console.error(`llama_cpp_peer: ${modelPath}: no such file`);
  process.exit(2);
}
const p = opt("-p", 512), n = opt("-n", 128), reps = opt("-r", 2);
const threads = opt("-t", os.availableParallelism());

const llama = await nlc.getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
const context = await model.createContext({
  contextSize: Math.max(p, n + 1) + 64,
  batchSize: Math.max(p, 1),
  threads,
  sequences: 1,
});
const sequence = context.getSequence();
// Token ids past the control and byte tokens; what they are does not matter to the speed.
const vocab = model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length ?? 512;
const tokens = Array.from({ length: p }, (_, i) => 259 + ((i * 7919) % (vocab - 259)));

const seconds = async (fn) => {
  await sequence.clearHistory();
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
};
const report = (test, count, best) =>
  console.log(JSON.stringify({ test, tokens_per_s: count / best, seconds: best, threads, peer: "llama.cpp", build: llama.llamaCppRelease?.release ?? "" }));

if (p > 0) {
  let best = Infinity;
  for (let r = 0; r < reps; r++)
    best = Math.min(best, await seconds(() => sequence.evaluateWithoutGeneratingNewTokens(tokens)));
  report(`pp${p}`, p, best);
}
if (n > 0) {
  let best = Infinity;
  for (let r = 0; r < reps; r++)
    best = Math.min(best, await seconds(async () => {
      // The generator evaluates lazily: the k-th token it yields comes after k single-token
      // steps (the prompt token, then each token it generated), so n yields are n steps.
      let made = 0;
      for await (const _ of sequence.evaluate([tokens[0] ?? 1000], { temperature: 0 }))
        if (++made >= n) break;
    }));
  report(`tg${n}`, n, best);
}
await context.dispose();
await model.dispose();
await llama.dispose();
