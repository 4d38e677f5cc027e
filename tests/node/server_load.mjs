// server_load.mjs — a bounded load test on loopback: TOTAL requests (mixed chat / completions,
// streamed or not) at concurrency CONC against a running `kiln serve`; every one must succeed.
// Reads the server's resident memory (/proc/PID/status) after the first 50 and at the end.
// env: KILN_URL, SERVER_PID
import fs from 'node:fs';
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.env.KILN_URL + '/v1', apiKey: 'unused', maxRetries: 0, timeout: 60000 });
const TOTAL = Number(process.env.TOTAL || 500), CONC = 16, WARM = 50;
const rss = () => Number(fs.readFileSync(`/proc/${process.env.SERVER_PID}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
const words = ['cat', 'dog', 'ball', 'park', 'tree', 'sun', 'boat', 'bird'];

async function one(i) {
  const topic = words[i % words.length] + ' ' + words[(i * 7) % words.length];
  const stream = i % 2 === 0;
  if (i % 3 === 0) {
    const r = await client.completions.create({ model: 'tiny', prompt: `Once upon a time a ${topic}`, max_tokens: 16,
      temperature: 0.8, seed: i, stream });
    if (stream) { let n = 0; for await (const c of r) n += c.choices.length; if (!n) throw new Error('empty stream'); }
    else if (!r.choices[0].text) throw new Error('empty text');
  } else {
    const r = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: `Tell me about a ${topic}.` }],
      max_tokens: 16, temperature: 0.8, seed: i, stream });
    if (stream) { let n = 0; for await (const c of r) n += c.choices.length; if (!n) throw new Error('empty stream'); }
    else if (typeof r.choices[0].message.content !== 'string') throw new Error('no content');
  }
}

let next = 0, errors = 0, done = 0, rssWarm = 0;
const firstErrors = [];
const t0 = Date.now();
async function worker() {
  while (next < TOTAL) {
    const i = next++;
    try { await one(i); } catch (e) { errors++; if (firstErrors.length < 3) firstErrors.push(String(e)); }
    if (++done === WARM) rssWarm = rss();
    if (process.env.TRACE && done % 250 === 0) console.error(`after ${done}: ${rss()} kB`);
  }
}
await Promise.all(Array.from({ length: CONC }, worker));
const secs = (Date.now() - t0) / 1000;
const rssEnd = rss();
const growth = (rssEnd - rssWarm) / rssWarm;
console.log(errors === 0 ? `ok - ${TOTAL} requests at concurrency ${CONC} without errors (${secs.toFixed(1)} s)`
  : `not ok - ${TOTAL} requests at concurrency ${CONC}: ${errors} errors: ${firstErrors.join(' | ')}`);
console.log(growth <= 0.10 ? `ok - RSS after the run within 10% of RSS after ${WARM} (${rssWarm} kB -> ${rssEnd} kB)`
  : `not ok - RSS grew ${(growth * 100).toFixed(1)}%: ${rssWarm} kB after ${WARM}, ${rssEnd} kB at the end`);
