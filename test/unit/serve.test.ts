// lorakit serve through the official openai client: the base and two pattern adapters picked per request by
// `model`, streaming that equals the whole answer, stop sequences, seeds, adapters loaded and unloaded while
// serving, a client abort that stops the generation on the server, the bound on requests at once, the API key,
// and the errors (bad body, unknown model, oversized request) in OpenAI's shape.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import OpenAI from 'openai';
import { GenerationSession, PATTERN_PREFIX, PATTERNS } from '../../src/engine';
import { tmpDir } from '../helpers';
import { openSession, patternModel, serve } from '../serve-fixture';

let session: GenerationSession;
let s: Awaited<ReturnType<typeof serve>>;
let client: OpenAI;
let adapters: { zebra?: string; mango?: string };

before(async () => {
  const m = await patternModel(tmpDir('serve'), ['zebra', 'mango']);
  adapters = m.adapters;
  session = openSession(m.model, adapters);
  s = await serve(session);
  client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  await s?.close();
  session?.close();
});

const complete = (model: string, more: Partial<OpenAI.CompletionCreateParamsNonStreaming> = {}) =>
  client.completions.create({ model, prompt: PATTERN_PREFIX, max_tokens: 12, temperature: 0, ...more });

/** the error a call fails with (it must fail) */
async function failure(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, `not an API error: ${e}`);
    return e;
  }
  assert.fail('the call succeeded');
}

/** wait until a log line matches (the server logs each generation as it ends) */
async function logged(re: RegExp, ms = 10000): Promise<string> {
  for (const t0 = Date.now(); Date.now() - t0 < ms; await new Promise((r) => setTimeout(r, 20))) {
    const line = s.logs.find((l) => re.test(l));
    if (line) return line;
  }
  assert.fail(`no log line matches ${re}:\n${s.logs.join('\n')}`);
}

test('/v1/models lists the base model and each adapter', async () => {
  const ids = (await client.models.list()).data.map((m) => m.id);
  assert.deepEqual(ids, ['tiny', 'zebra', 'mango']);
  assert.equal((await client.models.retrieve('zebra')).id, 'zebra');
});

test('completions: each adapter, picked by `model`, gives its own pattern; the base gives neither', async () => {
  const [base, zebra, mango] = await Promise.all(['tiny', 'zebra', 'mango'].map((m) => complete(m)));
  assert.ok(zebra.choices[0].text.startsWith(` ${PATTERNS.zebra.slice(0, 10)}`), zebra.choices[0].text);
  assert.ok(mango.choices[0].text.startsWith(` ${PATTERNS.mango.slice(0, 10)}`), mango.choices[0].text);
  for (const p of Object.values(PATTERNS)) assert.ok(!base.choices[0].text.includes(p.slice(0, 6)), base.choices[0].text);
  assert.equal(zebra.object, 'text_completion');
  assert.match(zebra.id, /^cmpl-/);
  assert.equal(zebra.model, 'zebra');
  assert.equal(zebra.choices[0].finish_reason, 'length');
  const u = zebra.usage!;
  assert.equal(u.completion_tokens, 12);
  assert.equal(u.total_tokens, u.prompt_tokens + 12);
  assert.equal(typeof u.prompt_tokens_details?.cached_tokens, 'number');
  // a one-element array is a prompt too, and the second time the prompt comes from the prefix cache
  const again = await complete('zebra', { prompt: [PATTERN_PREFIX] });
  assert.equal(again.choices[0].text, zebra.choices[0].text);
  assert.ok(again.usage!.prompt_tokens_details!.cached_tokens! > 0);
});

test('a stop sequence ends the text before it, with finish_reason stop', async () => {
  const r = await complete('zebra', { stop: ['(x)'], max_tokens: 16 });
  assert.equal(r.choices[0].text, ' zebra_quux');
  assert.equal(r.choices[0].finish_reason, 'stop');
  const one = await complete('mango', { stop: '_', max_tokens: 16 });
  assert.equal(one.choices[0].text, ' mango');
});

test('the same seed gives the same sampled text; streaming gives the same text as the whole answer', async () => {
  const sampled = { model: 'tiny', prompt: 'The quick brown', max_tokens: 24, temperature: 0.9, top_p: 0.95 } as const;
  const a = await client.completions.create({ ...sampled, seed: 11 });
  const b = await client.completions.create({ ...sampled, seed: 11 });
  const c = await client.completions.create({ ...sampled, seed: 12 });
  assert.equal(a.choices[0].text, b.choices[0].text);
  assert.notEqual(a.choices[0].text, c.choices[0].text);
  const stream = await client.completions.create({ ...sampled, seed: 11, stream: true, stream_options: { include_usage: true } });
  const chunks: OpenAI.Completion[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.equal(chunks.map((k) => k.choices[0]?.text ?? '').join(''), a.choices[0].text);
  const usage = chunks.pop()!;
  assert.deepEqual(usage.choices, []);
  assert.equal(usage.usage!.completion_tokens, a.usage!.completion_tokens);
  assert.equal(chunks.at(-1)!.choices[0].finish_reason, a.choices[0].finish_reason);
  assert.ok(chunks.slice(0, -1).every((k) => k.choices[0].finish_reason === null && k.object === 'text_completion'));
});

test('chat completions: whole and streamed (delta chunks, role first, usage last) agree; max_completion_tokens bounds them', async () => {
  const req = {
    model: 'zebra',
    messages: [
      { role: 'system' as const, content: 'Be brief.' },
      { role: 'user' as const, content: 'hi' },
    ],
    seed: 5,
  };
  const whole = await client.chat.completions.create({ ...req, max_completion_tokens: 10 });
  assert.equal(whole.object, 'chat.completion');
  assert.match(whole.id, /^chatcmpl-/);
  assert.equal(whole.choices[0].message.role, 'assistant');
  assert.ok(whole.usage!.completion_tokens <= 10);
  const stream = await client.chat.completions.create({ ...req, max_tokens: 10, stream: true, stream_options: { include_usage: true } });
  const chunks: OpenAI.ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.ok(chunks.every((k) => k.object === 'chat.completion.chunk' && k.id === chunks[0].id));
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  assert.equal(chunks.map((k) => k.choices[0]?.delta.content ?? '').join(''), whole.choices[0].message.content);
  const { completion_tokens, prompt_tokens } = chunks.at(-1)!.usage!;
  assert.deepEqual([completion_tokens, prompt_tokens], [whole.usage!.completion_tokens, whole.usage!.prompt_tokens]);
  assert.equal(chunks.at(-2)!.choices[0].finish_reason, whole.choices[0].finish_reason);
});

test('suffix: fill-in-the-middle around the cursor', async () => {
  const plain = await complete('tiny', { max_tokens: 4 });
  const fim = await complete('tiny', { max_tokens: 4, suffix: '\n\ndef more(z):\n    pass\n' });
  // the prompt holds the suffix and the three FIM tokens
  assert.ok(fim.usage!.prompt_tokens >= plain.usage!.prompt_tokens + 3 + 4, JSON.stringify([plain.usage, fim.usage]));
});

test('adapters load and unload while serving (vLLM routes); a request to an unloaded adapter is a 404', async () => {
  const loaded = await client.post<any>('/load_lora_adapter', { body: { lora_name: 'zebra2', lora_path: adapters.zebra } });
  assert.equal(loaded.id, 'zebra2');
  assert.ok((await client.models.list()).data.some((m) => m.id === 'zebra2'));
  assert.ok((await complete('zebra2')).choices[0].text.startsWith(' zebra_quux'));
  // a name in use, a bad folder, the base's id: 400s that say why
  const twice = await failure(client.post('/load_lora_adapter', { body: { lora_name: 'zebra2', lora_path: adapters.mango } }));
  assert.equal(twice.status, 400);
  assert.match(twice.message, /loaded already/);
  const missing = '/nonexistent/adapter';
  const bad = await failure(client.post('/load_lora_adapter', { body: { lora_name: 'x', lora_path: missing } }));
  assert.equal(bad.status, 400);
  assert.equal(bad.param, 'lora_path');
  assert.ok(bad.message.includes(missing), bad.message);
  assert.equal((await failure(client.post('/load_lora_adapter', { body: { lora_name: 'tiny', lora_path: adapters.zebra } }))).status, 400);
  // in place: the name now holds the other pattern
  await client.post('/load_lora_adapter', { body: { lora_name: 'zebra2', lora_path: adapters.mango, load_inplace: true } });
  assert.ok((await complete('zebra2')).choices[0].text.startsWith(' mango_flux'));
  await client.post('/unload_lora_adapter', { body: { lora_name: 'zebra2' } });
  const gone = await failure(complete('zebra2'));
  assert.equal(gone.status, 404);
  assert.equal(gone.code, 'model_not_found');
  assert.equal((await failure(client.post('/unload_lora_adapter', { body: { lora_name: 'zebra2' } }))).status, 404);
  assert.deepEqual(
    (await client.models.list()).data.map((m) => m.id),
    ['tiny', 'zebra', 'mango'],
  );
});

test('an adapter unloaded while a request uses it: that request finishes with it', async () => {
  await client.post('/load_lora_adapter', { body: { lora_name: 'mango2', lora_path: adapters.mango } });
  const stream = await client.completions.create({ model: 'mango2', prompt: PATTERN_PREFIX, max_tokens: 16, temperature: 0, stream: true });
  let text = '';
  let unloaded = false;
  for await (const chunk of stream) {
    // unloaded once the generation has begun
    if (!unloaded) await client.post('/unload_lora_adapter', { body: { lora_name: 'mango2' } });
    unloaded = true;
    text += chunk.choices[0]?.text ?? '';
  }
  assert.ok(text.startsWith(' mango_flux'), text);
  assert.equal((await failure(complete('mango2'))).status, 404);
});

test('a client that aborts (AbortController) ends its generation on the server, streamed or not', async () => {
  const long = { model: 'tiny', prompt: 'x', max_tokens: 1500, temperature: 0 } as const;
  const ac = new AbortController();
  const stream = await client.completions.create({ ...long, stream: true }, { signal: ac.signal });
  let n = 0;
  // the client ends the iteration quietly when its own signal aborts it
  for await (const _ of stream) if (++n === 3) ac.abort();
  assert.ok(n < 100, `${n} chunks`);
  const line = await logged(/^completion tiny: 1 prompt tokens .* \+ \d+ → cancelled/);
  assert.ok(Number(/\+ (\d+) →/.exec(line)![1]) < 1500, line);
  s.logs.length = 0;
  const ac2 = new AbortController();
  const whole = client.completions.create(long, { signal: ac2.signal });
  setTimeout(() => ac2.abort(), 300); // the whole generation takes seconds
  await assert.rejects(whole, OpenAI.APIUserAbortError);
  const line2 = await logged(/→ cancelled/);
  assert.ok(Number(/\+ (\d+) →/.exec(line2)![1]) < 1500, line2);
  // the server answers the next request as before
  assert.ok((await complete('zebra')).choices[0].text.startsWith(' zebra_quux'));
});

test('beyond the bound on requests at once, a 429 in OpenAI shape', async () => {
  const bounded = await serve(session, { maxPending: 1 });
  try {
    const c = new OpenAI({ baseURL: `${bounded.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const ac = new AbortController();
    const first = await c.completions.create(
      { model: 'tiny', prompt: 'x', max_tokens: 1500, temperature: 0, stream: true },
      { signal: ac.signal },
    );
    const it = first[Symbol.asyncIterator]();
    await it.next(); // running now
    const busy = await failure(c.completions.create({ model: 'tiny', prompt: 'y', max_tokens: 2 }));
    assert.equal(busy.status, 429);
    assert.equal(busy.type, 'rate_limit_error');
    ac.abort();
    await it.next().catch(() => {});
    // once it is cancelled, the next one is taken
    for (let i = 0; ; i++)
      try {
        await c.completions.create({ model: 'tiny', prompt: 'y', max_tokens: 2 });
        break;
      } catch (e) {
        if (!(e instanceof OpenAI.RateLimitError) || i > 100) throw e;
        await new Promise((r) => setTimeout(r, 20));
      }
  } finally {
    await bounded.close();
  }
});

test('with an API key, a request without it (or with another) is a 401; GET / stays open', async () => {
  const keyed = await serve(session, { apiKey: 'sekrit' });
  try {
    const wrong = new OpenAI({ baseURL: `${keyed.url}/v1`, apiKey: 'guess', maxRetries: 0 });
    const e = await failure(wrong.models.list());
    assert.equal(e.status, 401);
    assert.equal(e.code, 'invalid_api_key');
    assert.equal(e.type, 'authentication_error');
    assert.equal((await fetch(`${keyed.url}/api/tags`)).status, 401);
    const right = new OpenAI({ baseURL: `${keyed.url}/v1`, apiKey: 'sekrit', maxRetries: 0 });
    assert.equal((await right.models.list()).data[0].id, 'tiny');
    assert.equal((await fetch(keyed.url)).status, 200);
  } finally {
    await keyed.close();
  }
});

test('bad bodies are 400s that name the field; an unknown model or route is a 404', async () => {
  const cases: [object, string][] = [
    [{ model: 'tiny', prompt: 'x', n: 2 }, 'n'],
    [{ model: 'tiny', prompt: 'x', temperature: 3 }, 'temperature'],
    [{ model: 'tiny', prompt: 'x', max_tokens: 4096 }, 'max_tokens'],
    [{ model: 'tiny', prompt: 'x', max_tokens: -1 }, 'max_tokens'],
    [{ model: 'tiny', prompt: 'x', stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
    [{ model: 'tiny', prompt: 'x', logprobs: 2 }, 'logprobs'],
    [{ model: 'tiny', prompt: [1, 2, 3] }, 'prompt'],
    [{ model: 'tiny', prompt: ['a', 'b'] }, 'prompt'],
    [{ prompt: 'x' }, 'model'],
  ];
  for (const [body, param] of cases) {
    const e = await failure(client.completions.create(body as any));
    assert.equal(e.status, 400, JSON.stringify(body));
    assert.equal(e.param, param, `${JSON.stringify(body)}: ${e.message}`);
    assert.equal(e.type, 'invalid_request_error');
  }
  const chat: [object, string][] = [
    [{ model: 'tiny', messages: [] }, 'messages'],
    [{ model: 'tiny', messages: [{ role: 'tool', content: 'x' }] }, 'messages.0.role'],
    [{ model: 'tiny', messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'f' } }] }, 'tools'],
  ];
  for (const [body, param] of chat) assert.equal((await failure(client.chat.completions.create(body as any))).param, param);
  const notJson = await failure(client.post('/completions', { body: 'not an object' }));
  assert.equal(notJson.status, 400);
  const unknown = await failure(complete('no-such-model'));
  assert.equal(unknown.status, 404);
  assert.equal(unknown.code, 'model_not_found');
  const route = await failure(client.get('/no/such/route'));
  assert.equal(route.status, 404);
});

test('an oversized body is a 413; so is a chat longer than the context with no max_tokens', async () => {
  const big = await failure(complete('tiny', { prompt: 'a'.repeat(5 << 20) }));
  assert.equal(big.status, 413);
  const long = 'the quick brown fox jumps over the lazy dog '.repeat(400);
  const e = await failure(client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: long }] }));
  assert.equal(e.status, 413);
  assert.equal(e.code, 'context_length_exceeded');
  // with max_tokens, the prompt's start is left out instead, as in lorakit generate
  const cut = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: long }], max_tokens: 2 });
  assert.equal(cut.usage!.prompt_tokens, 2048 - 2);
});
