// server_throughput.mjs — the measuring half of bench/server_throughput: against a running
// `kiln serve`, either aggregate generated tokens/s at several concurrencies (mode "tput"),
// or time to first token of a long prompt without and with a prompt-cache hit (mode "ttft").
// Prompts are token ids, so any tokenizer whose vocabulary covers the model's will do.
// usage: node server_throughput.mjs tput URL VOCAB TOKENS CONC...
//        node server_throughput.mjs ttft URL VOCAB PROMPT_TOKENS REPS
const [mode, url, vocabS, nS, ...rest] = process.argv.slice(2);
const vocab = Number(vocabS), n = Number(nS);
let seed = 12345;
const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
const prompt = (len) => Array.from({ length: len }, () => 3 + Math.floor(rand() * (Math.min(vocab, 30000) - 3)));

// One streamed completion; resolves to {ttft, tokens, seconds}.
async function run(promptIds, maxTokens) {
  const t0 = performance.now();
  const res = await fetch(url + '/v1/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ prompt: promptIds, max_tokens: maxTokens, temperature: 0, stream: true,
      stream_options: { include_usage: true } }) });
  if (res.status !== 200) throw new Error(`status ${res.status}: ${await res.text()}`);
  let ttft = 0, tokens = 0, buf = '';
  const dec = new TextDecoder();
  for await (const chunk of res.body) {
    buf += dec.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
      const j = JSON.parse(ev.slice(6));
      if (!ttft && j.choices.length) ttft = (performance.now() - t0) / 1000;
      if (j.usage) tokens = j.usage.completion_tokens;
    }
  }
  return { ttft, tokens, seconds: (performance.now() - t0) / 1000 };
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

if (mode === 'tput') {
  // ROUNDS passes over the concurrencies, each ratio taken within its pass (a shared host's
  // speed drifts between minutes), then the median of the passes' ratios.
  const rounds = Number(process.env.ROUNDS || 1);
  await run(prompt(8), 4); // warm up
  const concs = rest.map(Number);
  const ratios = {};
  for (let r = 1; r <= rounds; r++) {
    const out = {};
    for (const c of concs) {
      const t0 = performance.now();
      const results = await Promise.all(Array.from({ length: c }, () => run(prompt(8), n)));
      const secs = (performance.now() - t0) / 1000;
      const tokens = results.reduce((s, x) => s + x.tokens, 0);
      out[c] = tokens / secs;
      console.log(JSON.stringify({ test: `concurrency${c}`, round: r, generated_tokens: tokens,
        seconds: +secs.toFixed(3), tokens_per_s: +(tokens / secs).toFixed(2) }));
    }
    for (const c of concs.slice(1)) (ratios[c] ||= []).push(out[c] / out[concs[0]]);
  }
  for (const c of concs.slice(1))
    console.log(JSON.stringify({ test: `ratio_c${c}_vs_c${concs[0]}`, ratio: +median(ratios[c]).toFixed(2),
      rounds: ratios[c].map((x) => +x.toFixed(2)) }));
} else {
  const reps = Number(rest[0] || 3);
  const miss = [], hit = [];
  for (let r = 0; r < reps; r++) {
    const p = prompt(n); // a fresh prompt: nothing cached
    miss.push((await run(p, 1)).ttft);
    hit.push((await run(p, 1)).ttft); // the same prompt again: its blocks are cached
  }
  const m = median(miss), h = median(hit);
  console.log(JSON.stringify({ test: `ttft_${n}_miss`, seconds: +m.toFixed(4), all: miss.map((x) => +x.toFixed(4)) }));
  console.log(JSON.stringify({ test: `ttft_${n}_hit`, seconds: +h.toFixed(4), all: hit.map((x) => +x.toFixed(4)) }));
  console.log(JSON.stringify({ test: 'ttft_ratio_miss_vs_hit', ratio: +(m / h).toFixed(1) }));
}
