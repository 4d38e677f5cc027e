// kiln_tiny_eval.mjs BASE_URL [MIN_ADDITION_ACCURACY] — asks a running kiln server every item of
// tests/fixtures/kiln-tiny-heldout.json through the official openai client (greedy, one user
// message through the chat template) and reports accuracy per category. Exits non-zero when the
// held-out two-digit additions fall below the minimum (default 0.95) or another category
// below 0.9.
import OpenAI from 'openai';
import { readFileSync } from 'node:fs';

const [baseURL, minText] = process.argv.slice(2);
const min = Number(minText ?? 0.95);
const set = JSON.parse(
    readFileSync(new URL('../fixtures/kiln-tiny-heldout.json', import.meta.url), 'utf8'));
const client = new OpenAI({ baseURL, apiKey: 'unused' });
const model = (await client.models.list()).data[0].id;

const results = {};
async function ask(item) {
    const r = await client.chat.completions.create({
        model,
        messages: [{ role: 'user', content: item.prompt }],
        temperature: 0,
        max_tokens: 32,
    });
    const text = r.choices[0].message.content ?? '';
    // The number must stand alone (e.g. "105", not "1050").
    const right = new RegExp(`(^|[^0-9])${item.expected}([^0-9]|$)`).test(text);
    const key = item.category + (item.held_out ? ' (held out)' : '');
    results[key] ??= { right: 0, total: 0, wrong: [] };
    results[key].total++;
    if (right) results[key].right++;
    else if (results[key].wrong.length < 5) results[key].wrong.push(`${item.prompt} -> ${text}`);
}

const queue = [...set.items];
await Promise.all(Array.from({ length: 8 }, async () => {
    while (queue.length) await ask(queue.shift());
}));
let failed = false;
for (const [key, r] of Object.entries(results).sort()) {
    const acc = r.right / r.total;
    // The bar is for held-out additions; the other skills must stay at 90% or better.
    const bar = key === 'addition (held out)' ? min : 0.9;
    if (acc < bar) failed = true;
    console.log(`${acc < bar ? 'not ok' : 'ok'} - kiln-tiny ${key}: ${r.right}/${r.total} ` +
        `(${(100 * acc).toFixed(1)}%)${r.wrong.length ? ' wrong: ' + r.wrong.join(' | ') : ''}`);
}
process.exit(failed ? 1 : 0);
