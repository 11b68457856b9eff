// lorakit serve never falls over on what a client sends: random bytes, random JSON and near-valid bodies with
// random values, to every route, with any Content-Type. Every answer is a success or a well-formed error in its
// API's shape (never a 5xx), streams are whole, and the server still answers afterwards.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import fc from 'fast-check';
import { GenerationSession, makeTinyModel } from '../../src/engine';
import { FUZZ_SEED, tmpDir } from '../helpers';
import { openSession, serve } from '../serve-fixture';

let session: GenerationSession;
let s: Awaited<ReturnType<typeof serve>>;

before(async () => {
  // a short context keeps every generation short, whatever max_tokens the fuzzer leaves out
  const model = path.join(tmpDir('serve-fuzz'), 'model');
  makeTinyModel(model, { modelType: 'qwen2', fim: true, extraConfig: { max_position_embeddings: 96 } });
  session = openSession(model);
  s = await serve(session, { bodyLimit: 64 << 10 });
});
after(async () => {
  await s?.close();
  session?.close();
});

const ROUTES = [
  '/v1/completions',
  '/v1/chat/completions',
  '/v1/load_lora_adapter',
  '/v1/unload_lora_adapter',
  '/v1/models',
  '/api/generate',
  '/api/chat',
  '/api/show',
  '/api/tags',
  '/api/version',
  '/v1/nope',
  '/api',
];

/** a value of any JSON kind, or one a field plausibly holds */
const value = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom('tiny', 'tiny:latest', 'zebra', '', 'user', 'system', 'tool', 'text', '\n', 'x', true, null),
  fc.integer({ min: -3, max: 8 }),
  fc.double(),
  fc.array(fc.record({ role: fc.constantFrom('user', 'system', 'assistant', 'developer', 'tool'), content: fc.string({ maxLength: 8 }) }), {
    maxLength: 3,
  }),
);

/** a valid body for each route that takes one: the fuzzer changes a few of its fields */
const VALID: Record<string, Record<string, unknown>> = {
  '/v1/completions': { model: 'tiny', prompt: 'def f(', max_tokens: 4 },
  '/v1/chat/completions': { model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 },
  '/api/generate': { model: 'tiny', prompt: 'x', options: { num_predict: 4 } },
  '/api/chat': { model: 'tiny', messages: [{ role: 'user', content: 'hi' }], options: { num_predict: 4 } },
  '/api/show': { model: 'tiny' },
  '/v1/load_lora_adapter': { lora_name: 'a', lora_path: '/nonexistent' },
  '/v1/unload_lora_adapter': { lora_name: 'a' },
};
const FIELDS = (
  'model prompt suffix system messages max_tokens max_completion_tokens temperature top_p seed stop n stream stream_options ' +
  'options lora_name lora_path load_inplace logprobs raw images tools'
).split(' ');
const options = fc.record({ num_predict: value, temperature: value, top_p: value, seed: value, stop: value }, { requiredKeys: [] });

/** a body for a route: random text or JSON, or its valid body with up to three fields changed (or dropped) */
const bodyFor = (route: string) =>
  fc.oneof(
    fc.string({ maxLength: 60 }),
    fc.string({ unit: 'binary', maxLength: 60 }),
    fc.json({ maxDepth: 3 }),
    fc.constantFrom('', '{"__proto__": {"model": "tiny"}, "prompt": "x"}', '{"constructor": {"prototype": {}}}', '[]', 'null'),
    {
      weight: 6,
      arbitrary: fc
        .tuple(fc.dictionary(fc.constantFrom(...FIELDS), fc.oneof(value, options, fc.constant(undefined)), { maxKeys: 3 }), fc.boolean())
        .map(([changes, stream]) => JSON.stringify({ ...VALID[route], stream, ...changes })),
    },
  );
const contentType = fc.constantFrom(
  'application/json',
  'text/plain',
  'application/x-www-form-urlencoded',
  'application/json; charset=latin1',
  undefined,
);

/** a well-formed answer: JSON (an error in the route's API's shape when it is one), or a whole SSE or NDJSON stream */
function wellFormed(route: string, status: number, type: string, text: string): void {
  assert.ok([200, 400, 404, 413, 415].includes(status), `status ${status}: ${text}`);
  if (type.startsWith('text/event-stream')) {
    const events = text.split('\n\n').filter(Boolean);
    assert.equal(events.at(-1), 'data: [DONE]');
    for (const e of events.slice(0, -1)) JSON.parse(e.replace(/^data: /, ''));
    return;
  }
  if (type.startsWith('application/x-ndjson')) {
    const ls = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(ls.at(-1).done, true);
    return;
  }
  assert.match(type, /^application\/json/, `${route}: ${type}`);
  const json = JSON.parse(text);
  if (status === 200) return;
  if (route.startsWith('/api')) assert.equal(typeof json.error, 'string', text);
  else {
    const e = json.error;
    assert.ok(typeof e.message === 'string' && typeof e.type === 'string', text);
    assert.ok(e.param === null || typeof e.param === 'string', text);
    assert.ok(e.code === null || typeof e.code === 'string', text);
  }
}

test('random bodies to every route: a success or a well-formed 4xx, never a 5xx; the server answers afterwards', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...ROUTES).chain((route) => fc.tuple(fc.constant(route), bodyFor(route))),
      fc.constantFrom('POST', 'POST', 'POST', 'GET'),
      contentType,
      async ([route, b], method, type) => {
        const r = await fetch(`${s.url}${route}`, {
          method,
          ...(method === 'POST' ? { body: b, headers: type ? { 'content-type': type } : {} } : {}),
        });
        wellFormed(route, r.status, r.headers.get('content-type') ?? '', await r.text());
      },
    ),
    { seed: FUZZ_SEED, numRuns: 400 },
  );
  const r = await fetch(`${s.url}/v1/models`);
  assert.equal(r.status, 200);
  assert.equal((await r.json()).data[0].id, 'tiny');
  assert.ok(!s.logs.some((l) => /internal error|Error:/.test(l)), s.logs.filter((l) => /Error/.test(l)).join('\n'));
});

test('an oversized body is a 413 and a malformed one a 400, in each API shape', async () => {
  const big = 'x'.repeat(65 << 10);
  for (const route of ['/v1/completions', '/api/generate']) {
    const r = await fetch(`${s.url}${route}`, { method: 'POST', body: JSON.stringify({ model: 'tiny', prompt: big }) });
    assert.equal(r.status, 413);
    wellFormed(route, r.status, r.headers.get('content-type')!, await r.text());
    const bad = await fetch(`${s.url}${route}`, { method: 'POST', body: '{"model": "tiny",' });
    assert.equal(bad.status, 400);
    wellFormed(route, bad.status, bad.headers.get('content-type')!, await bad.text());
  }
});
