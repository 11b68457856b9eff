// `lorakit serve` as a user runs it: it prints where it listens (a line of JSON with --json; the URL and example
// lines without), answers /v1/models with the base and its adapters, and stops with status 0 on SIGTERM; bad flags
// are usage errors (2), a missing adapter folder or a port in use a user error (1).
import { TestContext, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { PATTERN_TRAINING, makePatternFolder, makeTinyModel, resolveTrainConfig, train } from '../../src/engine';
import { cliEnv, lorakit, tmpDir, userError } from '../helpers';

const root = tmpDir('serve-cli');
const model = path.join(root, 'tiny-coder');
makeTinyModel(model, { modelType: 'qwen2', fim: true });

/** Start `lorakit serve …`; resolves with its first line of stdout, the process, and how to stop it. The test's
 * `after` kills it if an assertion fails first: a server left running keeps this file's process, and the run, alive. */
function start(t: TestContext, ...args: string[]) {
  const p = spawn(process.execPath, [path.resolve('bin/lorakit.js'), 'serve', '--model', model, '--port', '0', ...args], {
    env: cliEnv(),
  });
  let stdout = '';
  let stderr = '';
  p.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
  t.after(() => {
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  });
  const listening = new Promise<string>((resolve, reject) => {
    p.stdout.on('data', (d) => {
      stdout += d;
      if (stdout.includes('\n')) resolve(stdout);
    });
    exited.then((code) => reject(new Error(`lorakit serve exited (${code}) before listening: ${stderr}`)));
  });
  return {
    listening,
    stdout: () => stdout,
    stderr: () => stderr,
    async stop(): Promise<number | null> {
      p.kill('SIGTERM');
      return exited;
    },
  };
}

test(
  'serve --json: one line with the URL; /v1/models lists the base and the adapter; SIGTERM stops it with status 0',
  { timeout: 120_000 },
  async (t) => {
    const data = makePatternFolder(path.join(root, 'data'), 'zebra_quux(x) + 42');
    const run = path.join(root, 'run');
    await train(resolveTrainConfig({ model, data, out: run, ...PATTERN_TRAINING, steps: 2, backend: 'cpu' }));
    const s = start(t, '--adapter', `zebra=${path.join(run, 'adapter')}`, '--json');
    const line = JSON.parse(await s.listening);
    assert.match(line.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.deepEqual([line.model, line.adapters], ['tiny-coder', ['zebra']]);
    const models = await (await fetch(`${line.url}/v1/models`)).json();
    assert.deepEqual(
      models.data.map((m: { id: string }) => m.id),
      ['tiny-coder', 'zebra'],
    );
    const r = await fetch(`${line.url}/v1/completions`, {
      method: 'POST',
      // greedy: sampled at OpenAI's default temperature 1, the tiny model ends the text early about 1 time in 80
      body: JSON.stringify({ model: 'zebra', prompt: 'def f(', max_tokens: 3, temperature: 0 }),
    });
    assert.equal((await r.json()).usage.completion_tokens, 3);
    assert.equal(await s.stop(), 0);
    assert.match(s.stderr(), /completion zebra: .* → length/);
    assert.match(s.stderr(), /SIGTERM: stopping/);
    assert.equal(s.stdout().trim().split('\n').length, 1);
  },
);

test('serve without --json prints the URL, a curl line and OPENAI_BASE_URL; --api-key guards it', { timeout: 60_000 }, async (t) => {
  const s = start(t, '--api-key', 'k3y');
  const text = await s.listening;
  await new Promise((r) => setTimeout(r, 100)); // the example lines follow the first
  const url = /serving tiny-coder on (http:\/\/127\.0\.0\.1:\d+)/.exec(text)![1];
  assert.match(s.stdout(), new RegExp(`curl ${url}/v1/completions .*Authorization: Bearer k3y`));
  assert.match(s.stdout(), new RegExp(`OPENAI_BASE_URL=${url}/v1`));
  assert.equal((await fetch(`${url}/v1/models`)).status, 401);
  assert.equal((await fetch(`${url}/v1/models`, { headers: { authorization: 'Bearer k3y' } })).status, 200);
  assert.equal(await s.stop(), 0);
});

test('serve: bad flags exit 2, a missing adapter folder or a port in use exit 1', async () => {
  for (const args of [
    ['--adapter', 'no-equals-sign'],
    ['--port', '70000'],
    ['--adapter', 'tiny-coder=/x'],
    ['--api-key', ''],
  ]) {
    const r = lorakit('serve', '--model', model, ...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
  }
  assert.equal(lorakit('serve').code, 2);
  const missing = path.join(root, 'missing-adapter');
  userError(lorakit('serve', '--model', model, '--adapter', `a=${missing}`), missing, /adapter folder not found/);
  const busy = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => busy.once('listening', r));
  try {
    const port = (busy.address() as net.AddressInfo).port;
    userError(lorakit('serve', '--model', model, '--port', String(port)), null, new RegExp(`127.0.0.1:${port} is in use`));
  } finally {
    busy.close();
  }
});
