// server_api.mjs — drives a running `kiln serve` (stories260K test model, see
// tests/integration/server_lib.sh) with the official openai client. Greedy text is checked
// against llama2.c's published output for the model (golden_greedy_t0_256.txt), concurrency
// against the same requests run alone. Prints "ok - NAME" / "not ok - NAME: why" lines.
// env: KILN_URL, SHARED, TOOL_ID, LLAMA_TOOL_ID, THINK_ID
import fs from 'node:fs';
import OpenAI from 'openai';

const url = process.env.KILN_URL;
const client = new OpenAI({ baseURL: url + '/v1', apiKey: 'unused', maxRetries: 0, timeout: 60000 });
const golden = fs.readFileSync(process.env.SHARED + '/models/stories260K/golden_greedy_t0_256.txt', 'utf8');
const goldenIds = JSON.parse(fs.readFileSync(process.env.SHARED + '/models/stories260K/hf/golden_greedy_256.json', 'utf8')).greedy_ids;
const MODEL = 'tiny';
const TOOL_ID = process.env.TOOL_ID, LLAMA_TOOL_ID = process.env.LLAMA_TOOL_ID, THINK_ID = process.env.THINK_ID;
const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
const user = (text) => [{ role: 'user', content: text }];

function check(name, cond, why) {
  console.log(cond ? `ok - ${name}` : `not ok - ${name}: ${why}`);
}
async function test(name, fn) {
  try { await fn(); } catch (e) { console.log(`not ok - ${name}: threw ${e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : e}`); }
}
async function collectCompletion(stream) {
  let text = '', finish = null, usage = null, chunks = 0;
  for await (const c of stream) {
    chunks++;
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) { text += ch.text; if (ch.finish_reason) finish = ch.finish_reason; }
  }
  return { text, finish, usage, chunks };
}
async function collectChat(stream) {
  const out = { content: '', reasoning: '', calls: [], finish: null, usage: null, roles: [] };
  for await (const c of stream) {
    if (c.usage) out.usage = c.usage;
    for (const ch of c.choices) {
      const d = ch.delta || {};
      if (d.role) out.roles.push(d.role);
      if (d.content) out.content += d.content;
      if (d.reasoning_content) out.reasoning += d.reasoning_content;
      for (const t of d.tool_calls || []) out.calls[t.index] = t;
      if (ch.finish_reason) out.finish = ch.finish_reason;
    }
  }
  return out;
}
const metric = async (name) => {
  const text = await (await fetch(url + '/metrics')).text();
  const m = text.match(new RegExp('^' + name + '(?:\\{[^}]*\\})? ([0-9.e+-]+)$', 'm'));
  return m ? Number(m[1]) : NaN;
};

await test('models', async () => {
  const list = await client.models.list();
  check('models.list names the model', list.data.length === 1 && list.data[0].id === MODEL, JSON.stringify(list.data));
  const one = await client.models.retrieve(MODEL);
  check('models.retrieve', one.id === MODEL && one.object === 'model', JSON.stringify(one));
});

let greedy60 = '';
await test('completion', async () => {
  const r = await client.completions.create({ model: MODEL, prompt: '', max_tokens: 60, temperature: 0 });
  greedy60 = r.choices[0].text;
  check('greedy completion equals llama2.c golden output', greedy60.length > 100 && golden.startsWith(greedy60),
        JSON.stringify(greedy60));
  check('completion finish_reason length', r.choices[0].finish_reason === 'length', r.choices[0].finish_reason);
  check('completion usage', r.usage.prompt_tokens === 1 && r.usage.completion_tokens === 60 &&
        r.usage.total_tokens === 61 && r.usage.prompt_tokens_details.cached_tokens === 0, JSON.stringify(r.usage));
  check('completion object and id', r.object === 'text_completion' && r.id.startsWith('cmpl-'), r.object + ' ' + r.id);
  const s = await collectCompletion(await client.completions.create({ model: MODEL, prompt: '', max_tokens: 60,
    temperature: 0, stream: true, stream_options: { include_usage: true } }));
  check('streamed completion equals the non-streamed one', s.text === greedy60, JSON.stringify(s.text));
  check('stream finish_reason and usage chunk', s.finish === 'length' && s.usage && s.usage.completion_tokens === 60,
        JSON.stringify([s.finish, s.usage]));
});

await test('stop strings', async () => {
  const stop = 'girl named';
  const lp = await client.completions.create({ model: MODEL, prompt: '', max_tokens: 20, temperature: 0, logprobs: 0 });
  const toks = lp.choices[0].logprobs.tokens;
  check('the stop string spans several tokens', !toks.some((t) => t.includes(stop)) && lp.choices[0].text.includes(stop),
        JSON.stringify(toks));
  const want = golden.slice(0, golden.indexOf(stop));
  const r = await client.completions.create({ model: MODEL, prompt: '', max_tokens: 60, temperature: 0, stop });
  check('stop string across tokens ends the text before it', r.choices[0].text === want && r.choices[0].finish_reason === 'stop',
        JSON.stringify([r.choices[0].text, r.choices[0].finish_reason]));
  const s = await collectCompletion(await client.completions.create({ model: MODEL, prompt: '', max_tokens: 60,
    temperature: 0, stop: ['zzz', 'd Lily', 'girl named'], stream: true }));
  check('streamed stop strings: earliest match wins', s.text === golden.slice(0, golden.indexOf('girl named')) && s.finish === 'stop',
        JSON.stringify(s));
  const c = await client.chat.completions.create({ model: MODEL, messages: user('hi'), max_tokens: 40, temperature: 0 });
  const full = c.choices[0].message.content;
  const cut = full.slice(3, 9);
  const c2 = await client.chat.completions.create({ model: MODEL, messages: user('hi'), max_tokens: 40, temperature: 0, stop: [cut] });
  check('chat stop string', c2.choices[0].message.content === full.slice(0, full.indexOf(cut)) && c2.choices[0].finish_reason === 'stop',
        JSON.stringify([full, cut, c2.choices[0].message.content]));
});

await test('chat', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'system', content: 'Be brief.' },
    { role: 'user', content: [{ type: 'text', text: 'Tell me ' }, { type: 'text', text: 'a story.' }] }], max_tokens: 30, temperature: 0 });
  const m = r.choices[0].message;
  check('chat message', m.role === 'assistant' && typeof m.content === 'string' && m.content.length > 0, JSON.stringify(m));
  check('chat response fields', r.object === 'chat.completion' && r.id.startsWith('chatcmpl-') && r.model === MODEL &&
        typeof r.created === 'number' && typeof r.system_fingerprint === 'string', JSON.stringify(r));
  check('chat usage', r.usage.completion_tokens === 30 && r.usage.prompt_tokens > 10 &&
        r.usage.total_tokens === r.usage.prompt_tokens + 30, JSON.stringify(r.usage));
  const s = await collectChat(await client.chat.completions.create({ model: MODEL, messages: [{ role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Tell me a story.' }], max_tokens: 30, temperature: 0, stream: true, stream_options: { include_usage: true } }));
  check('streamed chat equals non-streamed (content parts joined)', s.content === m.content, JSON.stringify([s.content, m.content]));
  check('streamed chat role once, finish, usage', s.roles.join() === 'assistant' && s.finish === 'length' &&
        s.usage.completion_tokens === 30, JSON.stringify(s));
  const p = await client.chat.completions.create({ model: MODEL, messages: user('x'), max_completion_tokens: 3, temperature: 0 });
  check('max_completion_tokens', p.usage.completion_tokens === 3, JSON.stringify(p.usage));
  const multi = await client.chat.completions.create({ model: MODEL, max_tokens: 5, temperature: 0, messages: [
    { role: 'user', content: 'weather?' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: 'sunny' }, { role: 'user', content: 'thanks' }] });
  const kw = await client.chat.completions.create({ model: MODEL, messages: user('x'), max_tokens: 1, temperature: 0,
    chat_template_kwargs: { greeting: 'Hello there, friend.' } });
  check('chat_template_kwargs reach the template', kw.usage.prompt_tokens > p.usage.prompt_tokens + 5,
        `${kw.usage.prompt_tokens} vs ${p.usage.prompt_tokens}`);
  check('assistant tool_calls and tool messages are accepted', multi.choices[0].message.role === 'assistant', JSON.stringify(multi));
});

await test('n > 1', async () => {
  const g = await client.completions.create({ model: MODEL, prompt: 'Once', max_tokens: 12, temperature: 0, n: 3 });
  check('n=3 greedy: three identical choices', g.choices.length === 3 && g.choices.every((c, i) => c.index === i && c.text === g.choices[0].text),
        JSON.stringify(g.choices));
  check('n=3 usage counts every choice', g.usage.completion_tokens === 36 && g.usage.prompt_tokens === 2, JSON.stringify(g.usage));
  const two = await client.completions.create({ model: MODEL, prompt: ['Once', 'The dog'], max_tokens: 6, temperature: 0, n: 2 });
  const t = two.choices.map((c) => c.text);
  check('two prompts x n=2: four choices in order', two.choices.length === 4 && two.choices.every((c, i) => c.index === i) &&
        t[0] === t[1] && t[2] === t[3] && t[0] !== t[2] && two.usage.completion_tokens === 24, JSON.stringify([t, two.usage]));
  const a = await client.chat.completions.create({ model: MODEL, messages: user('hi'), max_tokens: 12, temperature: 1, n: 4, seed: 7 });
  const b = await client.chat.completions.create({ model: MODEL, messages: user('hi'), max_tokens: 12, temperature: 1, n: 4, seed: 7 });
  const texts = a.choices.map((c) => c.message.content);
  check('n=4 sampled choices differ', new Set(texts).size >= 2, JSON.stringify(texts));
  check('same seed, same choices', JSON.stringify(texts) === JSON.stringify(b.choices.map((c) => c.message.content)), JSON.stringify(b.choices));
  const s = await client.chat.completions.create({ model: MODEL, messages: user('hi'), max_tokens: 8, temperature: 0, n: 2, stream: true });
  const per = ['', ''];
  let finishes = 0;
  for await (const c of s) for (const ch of c.choices) { per[ch.index] += ch.delta.content || ''; if (ch.finish_reason) finishes++; }
  check('streamed n=2', per[0] === per[1] && per[0].length > 0 && finishes === 2, JSON.stringify(per));
});

await test('logprobs', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages: user('hi'), max_tokens: 10, temperature: 0,
    logprobs: true, top_logprobs: 3 });
  const lp = r.choices[0].logprobs.content;
  check('one logprob entry per token', lp.length === 10, lp.length);
  check('greedy token is the most likely', lp.every((e) => e.top_logprobs.length === 3 && e.logprob <= 0 &&
        Math.abs(e.top_logprobs[0].logprob - e.logprob) < 1e-5), JSON.stringify(lp[0]));
  check('top_logprobs sorted, probabilities sum below 1', lp.every((e) => e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob &&
        e.top_logprobs[1].logprob >= e.top_logprobs[2].logprob && e.top_logprobs.reduce((s, t) => s + Math.exp(t.logprob), 0) <= 1.0001),
        JSON.stringify(lp[1]));
  check('token texts spell the content', lp.map((e) => e.token).join('') === r.choices[0].message.content,
        JSON.stringify([lp.map((e) => e.token), r.choices[0].message.content]));
  const c = await client.completions.create({ model: MODEL, prompt: 'Once', max_tokens: 5, temperature: 0, logprobs: 2 });
  const l = c.choices[0].logprobs;
  check('completions logprobs format', l.tokens.length === 5 && l.token_logprobs.length === 5 && l.top_logprobs.length === 5 &&
        Object.keys(l.top_logprobs[0]).length === 2 && l.text_offset[0] === 0 && l.tokens.join('') === c.choices[0].text, JSON.stringify(l));
  const s = await client.chat.completions.create({ model: MODEL, messages: user('hi'), max_tokens: 4, temperature: 0,
    logprobs: true, stream: true });
  let n = 0;
  for await (const ch of s) for (const x of ch.choices) n += x.logprobs && x.logprobs.content ? x.logprobs.content.length : 0;
  check('streamed logprobs', n === 4, n);
});

await test('tool calls', async () => {
  const bias = (id) => ({ [id]: 100 });
  const r = await client.chat.completions.create({ model: MODEL, messages: user('weather in Paris?'), tools, max_tokens: 1,
    logit_bias: bias(TOOL_ID) });
  const m = r.choices[0].message;
  check('hermes tool call parsed', m.tool_calls && m.tool_calls.length === 1 && m.tool_calls[0].type === 'function' &&
        m.tool_calls[0].function.name === 'get_weather' && JSON.parse(m.tool_calls[0].function.arguments).city === 'Paris' &&
        m.content === null && r.choices[0].finish_reason === 'tool_calls', JSON.stringify(r.choices[0]));
  const noTools = await client.chat.completions.create({ model: MODEL, messages: user('weather in Paris?'), max_tokens: 1,
    logit_bias: bias(TOOL_ID) });
  check('tools reach the chat template', r.usage.prompt_tokens > noTools.usage.prompt_tokens + 20,
        `${r.usage.prompt_tokens} vs ${noTools.usage.prompt_tokens}`);
  check('without tools the text stays content', !noTools.choices[0].message.tool_calls && noTools.choices[0].message.content.includes('<tool_call>'),
        JSON.stringify(noTools.choices[0].message));
  const s = await collectChat(await client.chat.completions.create({ model: MODEL, messages: user('weather?'), tools, max_tokens: 2,
    logit_bias: bias(TOOL_ID), stream: true }));
  check('streamed tool call deltas', s.calls.length === 2 && s.calls.every((c) => c.function.name === 'get_weather' && c.id) &&
        s.finish === 'tool_calls' && s.content === '', JSON.stringify(s));
  const l = await client.chat.completions.create({ model: MODEL, messages: user('weather in Lyon?'), tools, max_tokens: 1,
    logit_bias: bias(LLAMA_TOOL_ID) });
  const lm = l.choices[0].message;
  check('llama 3.1 JSON tool call parsed', lm.tool_calls && lm.tool_calls[0].function.name === 'get_weather' &&
        JSON.parse(lm.tool_calls[0].function.arguments).city === 'Lyon' && l.choices[0].finish_reason === 'tool_calls', JSON.stringify(lm));
  const none = await client.chat.completions.create({ model: MODEL, messages: user('weather?'), tools, tool_choice: 'none', max_tokens: 1,
    logit_bias: bias(TOOL_ID) });
  check('tool_choice none: no parsing', !none.choices[0].message.tool_calls, JSON.stringify(none.choices[0].message));
});

await test('reasoning', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages: user('hi'), max_tokens: 1, logit_bias: { [THINK_ID]: 100 } });
  const m = r.choices[0].message;
  check('think block goes to reasoning_content', m.reasoning_content === 'Let me think.' && m.content === 'Sunny.', JSON.stringify(m));
  const s = await collectChat(await client.chat.completions.create({ model: MODEL, messages: user('hi'), max_tokens: 1,
    logit_bias: { [THINK_ID]: 100 }, stream: true }));
  check('streamed reasoning_content', s.reasoning === 'Let me think.' && s.content === 'Sunny.', JSON.stringify(s));
});

await test('prompt cache', async () => {
  const prompt = goldenIds.slice(0, 150);
  const a = await client.completions.create({ model: MODEL, prompt: [1, ...prompt], max_tokens: 5, temperature: 0 });
  const b = await client.completions.create({ model: MODEL, prompt: [1, ...prompt, ...goldenIds.slice(150, 170)], max_tokens: 5, temperature: 0 });
  check('a longer prompt reuses cached blocks', b.usage.prompt_tokens_details.cached_tokens >= 144 &&
        b.usage.prompt_tokens_details.cached_tokens % 16 === 0, JSON.stringify([a.usage, b.usage]));
  const goldenText = (ids) => a.choices[0].text;
  check('output after a cache hit is still golden', golden.includes(b.choices[0].text.trim()), JSON.stringify(b.choices[0].text));
  void goldenText;
  const conv = [{ role: 'user', content: 'Tell me a long story about a cat and a dog who were friends.' }];
  const t1 = await client.chat.completions.create({ model: MODEL, messages: conv, max_tokens: 30, temperature: 0 });
  conv.push(t1.choices[0].message, { role: 'user', content: 'And then?' });
  const t2 = await client.chat.completions.create({ model: MODEL, messages: conv, max_tokens: 5, temperature: 0 });
  check('multi-turn chat reports cached_tokens', t2.usage.prompt_tokens_details.cached_tokens >= 16, JSON.stringify(t2.usage));
  check('prompt cache metrics', (await metric('kiln_prompt_cache_hits_total')) >= 2, 'hits');
});

await test('concurrency', async () => {
  const prompts = Array.from({ length: 16 }, (_, i) => [1, ...goldenIds.slice(0, 3 + 9 * i)]);
  const alone = [];
  for (const p of prompts) alone.push((await client.completions.create({ model: MODEL, prompt: p, max_tokens: 24, temperature: 0 })).choices[0].text);
  const before = await metric('kiln_engine_steps_total');
  const together = await Promise.all(prompts.map(async (p) => (await collectCompletion(await client.completions.create({
    model: MODEL, prompt: p, max_tokens: 24, temperature: 0, stream: true }))).text));
  const steps = (await metric('kiln_engine_steps_total')) - before;
  const bad = together.map((t, i) => (t === alone[i] ? -1 : i)).filter((i) => i >= 0);
  check('16 concurrent greedy streams equal the same requests alone', bad.length === 0,
        JSON.stringify(bad.map((i) => [alone[i], together[i]])));
  check('the 16 streams shared forward passes', steps < 16 * 25, `${steps} steps`);
  check('golden continuation alone', golden.includes(alone[0].trim()), JSON.stringify(alone[0]));
});

await test('disconnect', async () => {
  const ac = new AbortController();
  const stream = await client.completions.create({ model: MODEL, prompt: 'Once', max_tokens: 400, temperature: 0, stream: true },
    { signal: ac.signal });
  let chunks = 0;
  try { for await (const c of stream) { if (++chunks === 3) ac.abort(); } } catch { /* aborted */ }
  let running = NaN;
  for (let i = 0; i < 50; i++) {
    running = await metric('kiln_running_sequences');
    if (running === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  check('a disconnected stream frees its sequence', running === 0, `running ${running}`);
  const r = await client.completions.create({ model: MODEL, prompt: 'Once', max_tokens: 3, temperature: 0 });
  check('the server keeps serving after a disconnect', r.choices[0].text.length > 0, JSON.stringify(r));
});

// ---- bad requests: status, OpenAI error object, and the parameter it names ----
const long = 'word '.repeat(600);
const chat = (extra) => ({ model: MODEL, messages: user('hi'), max_tokens: 4, ...extra });
const cmpl = (extra) => ({ model: MODEL, prompt: 'hi', max_tokens: 4, ...extra });
const C = '/v1/chat/completions', P = '/v1/completions';
const bad = [
  ['malformed JSON', C, 'POST', '{"model": "tiny", "messages": [', 400, null],
  ['body not an object', C, 'POST', '[1,2]', 400, null],
  ['empty body', C, 'POST', '', 400, null],
  ['duplicate keys', C, 'POST', '{"model":"tiny","model":"tiny","messages":[]}', 400, null],
  ['messages missing', C, 'POST', { model: MODEL }, 400, 'messages'],
  ['messages empty', C, 'POST', chat({ messages: [] }), 400, 'messages'],
  ['messages not array', C, 'POST', chat({ messages: 'hi' }), 400, 'messages'],
  ['message not object', C, 'POST', chat({ messages: ['hi'] }), 400, 'messages[0]'],
  ['bad role', C, 'POST', chat({ messages: [{ role: 'wizard', content: 'x' }] }), 400, 'messages[0].role'],
  ['user content missing', C, 'POST', chat({ messages: [{ role: 'user' }] }), 400, 'messages[0].content'],
  ['content wrong type', C, 'POST', chat({ messages: [{ role: 'user', content: 5 }] }), 400, 'messages[0].content'],
  ['image content part', C, 'POST', chat({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }), 400, 'messages[0].content[0].type'],
  ['unknown model', C, 'POST', chat({ model: 'gpt-9' }), 404, 'model'],
  ['model not string', C, 'POST', chat({ model: 3 }), 400, 'model'],
  ['temperature too high', C, 'POST', chat({ temperature: 3 }), 400, 'temperature'],
  ['temperature string', C, 'POST', chat({ temperature: 'hot' }), 400, 'temperature'],
  ['top_p out of range', C, 'POST', chat({ top_p: 1.5 }), 400, 'top_p'],
  ['top_k not integer', C, 'POST', chat({ top_k: 2.5 }), 400, 'top_k'],
  ['min_p negative', C, 'POST', chat({ min_p: -0.1 }), 400, 'min_p'],
  ['repetition_penalty zero', C, 'POST', chat({ repetition_penalty: 0 }), 400, 'repetition_penalty'],
  ['presence_penalty too big', C, 'POST', chat({ presence_penalty: 3 }), 400, 'presence_penalty'],
  ['frequency_penalty too small', C, 'POST', chat({ frequency_penalty: -3 }), 400, 'frequency_penalty'],
  ['max_tokens zero', C, 'POST', chat({ max_tokens: 0 }), 400, 'max_tokens'],
  ['max_tokens string', C, 'POST', chat({ max_tokens: '5' }), 400, 'max_tokens'],
  ['max_tokens beyond context', C, 'POST', chat({ max_tokens: 100000 }), 400, 'max_tokens', /512.*100/],
  ['prompt beyond context', P, 'POST', cmpl({ prompt: long }), 400, 'prompt', /512/],
  ['n zero', C, 'POST', chat({ n: 0 }), 400, 'n'],
  ['n too large', C, 'POST', chat({ n: 1000 }), 400, 'n'],
  ['stream not bool', C, 'POST', chat({ stream: 'yes' }), 400, 'stream'],
  ['stream_options without stream', C, 'POST', chat({ stream_options: { include_usage: true } }), 400, 'stream_options'],
  ['stop wrong type', C, 'POST', chat({ stop: 5 }), 400, 'stop'],
  ['too many stops', C, 'POST', chat({ stop: ['a', 'b', 'c', 'd', 'e'] }), 400, 'stop'],
  ['empty stop in list', C, 'POST', chat({ stop: ['a', ''] }), 400, 'stop'],
  ['logit_bias not object', C, 'POST', chat({ logit_bias: [1] }), 400, 'logit_bias'],
  ['logit_bias bad key', C, 'POST', chat({ logit_bias: { abc: 1 } }), 400, 'logit_bias'],
  ['logit_bias value range', C, 'POST', chat({ logit_bias: { 5: 500 } }), 400, 'logit_bias'],
  ['logit_bias token out of vocab', C, 'POST', chat({ logit_bias: { 99999: 1 } }), 400, 'logit_bias'],
  ['seed not integer', C, 'POST', chat({ seed: 'x' }), 400, 'seed'],
  ['logprobs not bool', C, 'POST', chat({ logprobs: 1 }), 400, 'logprobs'],
  ['top_logprobs without logprobs', C, 'POST', chat({ top_logprobs: 2 }), 400, 'top_logprobs'],
  ['top_logprobs too many', C, 'POST', chat({ logprobs: true, top_logprobs: 21 }), 400, 'top_logprobs'],
  ['completions logprobs too many', P, 'POST', cmpl({ logprobs: 6 }), 400, 'logprobs'],
  ['response_format json', C, 'POST', chat({ response_format: { type: 'json_object' } }), 400, 'response_format'],
  ['unknown field', C, 'POST', chat({ frobnicate: true }), 400, 'frobnicate'],
  ['tools not array', C, 'POST', chat({ tools: {} }), 400, 'tools'],
  ['tool without name', C, 'POST', chat({ tools: [{ type: 'function', function: {} }] }), 400, 'tools[0].function.name'],
  ['tool wrong type', C, 'POST', chat({ tools: [{ type: 'retrieval' }] }), 400, 'tools[0].type'],
  ['tool_choice required', C, 'POST', chat({ tools, tool_choice: 'required' }), 400, 'tool_choice'],
  ['chat_template_kwargs not object', C, 'POST', chat({ chat_template_kwargs: 3 }), 400, 'chat_template_kwargs'],
  ['prompt missing', P, 'POST', { model: MODEL }, 400, 'prompt'],
  ['prompt wrong type', P, 'POST', cmpl({ prompt: { a: 1 } }), 400, 'prompt'],
  ['prompt token out of vocab', P, 'POST', cmpl({ prompt: [1, 100000] }), 400, 'prompt'],
  ['echo unsupported', P, 'POST', cmpl({ echo: true }), 400, 'echo'],
  ['messages on completions', P, 'POST', cmpl({ messages: [] }), 400, 'messages'],
  ['invalid UTF-8 in prompt', P, 'POST', Buffer.from('{"prompt":"\xff\xfe"}', 'latin1'), 400, null],
  ['unknown path', '/v1/embeddings', 'POST', cmpl({}), 404, null],
  ['unknown model path', '/v1/models/nope', 'GET', null, 404, 'model'],
  ['GET on completions', C, 'GET', null, 405, null],
  ['DELETE on models', '/v1/models', 'DELETE', null, 405, null],
  ['PUT on completions', P, 'PUT', cmpl({}), 405, null],
];

await test('bad requests', async () => {
  let good = 0;
  for (const [name, path, method, body, status, param, msgRe] of bad) {
    const init = { method, headers: { 'Content-Type': 'application/json' } };
    if (body !== null && method !== 'GET') init.body = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    let res, json;
    try {
      res = await fetch(url + path, init);
      json = await res.json();
    } catch (e) {
      check(`bad request: ${name}`, false, `${e}`);
      continue;
    }
    const e = json && json.error;
    const okShape = e && typeof e.message === 'string' && e.message.length > 0 && typeof e.type === 'string' &&
      'param' in e && 'code' in e;
    const okParam = param === null || e.param === param;
    const okMsg = !msgRe || msgRe.test(e.message);
    const pass = res.status === status && okShape && okParam && okMsg;
    if (pass) good++;
    check(`bad request: ${name} -> ${status}`, pass, `status ${res.status} body ${JSON.stringify(json)}`);
  }
  check('at least 30 bad requests refused correctly', good >= 30, good);
  const r = await client.completions.create({ model: MODEL, prompt: '', max_tokens: 10, temperature: 0 });
  check('the server still serves after the bad requests', golden.startsWith(r.choices[0].text), JSON.stringify(r.choices[0].text));
});

await test('health and metrics', async () => {
  const h = await (await fetch(url + '/health')).json();
  check('health ok', h.status === 'ok', JSON.stringify(h));
  const text = await (await fetch(url + '/metrics')).text();
  for (const name of ['kiln_requests_total{status="200"}', 'kiln_requests_total{status="400"}', 'kiln_time_to_first_token_seconds_bucket',
    'kiln_time_per_output_token_seconds_count', 'kiln_queue_depth', 'kiln_running_sequences', 'kiln_kv_cache_usage_ratio',
    'kiln_prompt_cache_hits_total', 'kiln_generation_tokens_total', 'kiln_prompt_tokens_total'])
    check(`metrics has ${name}`, text.includes(name), 'missing');
});
