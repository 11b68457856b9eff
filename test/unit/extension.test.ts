// The extension's logic without VS Code: the real sidecar process (dist/sidecar.js) driven through the client and
// the controller with a fake UI — a run from start to adapter, stop keeps a checkpoint, a killed sidecar is
// noticed and the run resumes from its checkpoint, and bad input (from the user or the panel) starts nothing.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeDatasets, makeTinyModel } from '../../src/engine/fixtures/model';
import { SidecarClient, SidecarError } from '../../src/extension/client';
import { Controller, DEFAULT_SETTINGS, Ui, statusText } from '../../src/extension/controller';
import { activeAdapter, listAdapters, setActiveAdapter, inside, isGitIgnored, addToGitignore } from '../../src/extension/project';
import { EventMessage, ToPanel, TrainSettings } from '../../src/protocol';
import { tmpDir } from '../helpers';

const SIDECAR = path.resolve('dist/sidecar.js');

function fakeUi(over: Partial<Ui> = {}) {
  const posted: ToPanel[] = [];
  const logs: string[] = [];
  const errors: string[] = [];
  const statuses: string[] = [];
  const ui: Ui = {
    post: (m) => void posted.push(m),
    status: (t) => void statuses.push(t),
    info: async () => undefined,
    error: async (m) => (errors.push(m), undefined),
    log: (l) => void logs.push(l),
    defaults: () => ({}),
    trusted: () => true,
    pick: async () => undefined,
    adapterAction: async () => {},
    adaptersChanged: () => {},
    ...over,
  };
  return { ui, posted, logs, errors, statuses };
}

function harness(root: string, over: Partial<Ui> = {}) {
  const f = fakeUi(over);
  let c!: Controller;
  const client = new SidecarClient(SIDECAR, {
    onEvent: (e: EventMessage) => c.onEvent(e),
    onExit: (i) => void c.onExit(i),
    log: (l) => f.logs.push(l),
  });
  c = new Controller(root, client, f.ui);
  return { ...f, c, client };
}

/** resolves when the controller reaches one of the states */
function until(c: Controller, states: string[], ms = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      if (states.includes(c.status.state)) return resolve();
      if (Date.now() - t0 > ms) return reject(new Error(`timed out in state ${c.status.state}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

const root = tmpDir('ext');
const model = path.join(root, 'model');
makeTinyModel(model, { modelType: 'llama' });
const ds = makeDatasets(path.join(root, 'data'), 384);
const settings = (over: Partial<TrainSettings> = {}): TrainSettings => ({
  ...DEFAULT_SETTINGS,
  model,
  data: ds.text,
  seqLen: 32,
  batch: 2,
  steps: 6,
  lr: 1e-2,
  ...over,
});

test('sidecar: hello, estimate, and malformed or unknown requests answered with an error', async () => {
  const h = harness(root);
  try {
    const hello = await h.client.request('hello', {});
    assert.equal(hello.protocol, 1);
    assert.ok(hello.memoryBytes > 0);
    const est = await h.client.request('estimate', { settings: settings({ quant: 'nf4' }) });
    assert.ok(est.bytes.total > 0 && est.bitsPerParam! > 4);
    await assert.rejects(
      h.client.request('estimate', { settings: { ...settings(), rank: 0 } } as any),
      (e: SidecarError) => e.code === 'bad_request' && /rank/.test(e.message),
    );
    await assert.rejects(h.client.request('nonsense' as any, {} as any), (e: SidecarError) => e.code === 'bad_request');
    await assert.rejects(
      h.client.request('model/info', { path: ds.text }),
      (e: SidecarError) => e.code === 'user_error' && /not a model folder/.test(e.message),
    );
    const scan = await h.client.request('data/scan', { path: path.resolve('src/engine/ops') });
    assert.ok(scan.files >= 5);
  } finally {
    h.client.stop();
  }
});

test('a run from the controller: events, status bar text, history, adapter in .lorakit/, activation', async () => {
  const h = harness(root);
  try {
    const runDir = await h.c.start(settings());
    assert.ok(runDir && runDir.startsWith(path.join(root, '.lorakit', 'runs')));
    await until(h.c, ['done', 'failed']);
    assert.equal(h.c.status.state, 'done', h.c.status.message);
    assert.equal(h.c.steps[h.c.steps.length - 1].step, 6);
    assert.ok(h.posted.some((m) => m.type === 'steps') && h.posted.some((m) => m.type === 'eval'));
    assert.ok(!h.posted.some((m) => m.type === 'settings'), "starting a run leaves the panel's form alone");
    assert.ok(
      h.statuses.some((s) => /LoRA step \d+\/6 · loss \d+\.\d+ · \d+ tok\/s · ETA/.test(s)),
      h.statuses.join('\n'),
    );
    const adapters = listAdapters(root);
    assert.equal(adapters.length, 1);
    assert.ok(fs.existsSync(path.join(adapters[0].dir, 'adapter_model.safetensors')));
    assert.ok(adapters[0].finalLoss! > 0);
    setActiveAdapter(root, adapters[0].dir);
    assert.equal(activeAdapter(root), adapters[0].dir);
    assert.ok(listAdapters(root)[0].active);
    // a reopened panel gets the whole history
    const init = h.c.initMessage();
    assert.equal(init.type === 'init' && init.steps.length, h.c.steps.length);
    // and after a window reload (a new controller) the last run's charts and state come back from its folder
    const again = harness(root);
    assert.equal(again.c.status.state, 'done');
    assert.equal(again.c.steps.length, 6, 'every step from metrics.jsonl');
    assert.ok(again.c.evals.length > 0);
    assert.equal(again.c.settings.steps, 6);
  } finally {
    h.client.stop();
  }
});

test('stop keeps a checkpoint; killing the sidecar mid-run is noticed, and Restart and Resume finishes the run', async () => {
  const h = harness(root, { error: async (m) => (m.includes('stopped unexpectedly') ? 'Restart and Resume' : undefined) });
  try {
    const runDir = (await h.c.start(settings({ steps: 40, seqLen: 64 })))!;
    // wait for the first checkpoint (every 10 steps), then kill the process as a crash would
    const ck = path.join(runDir, 'checkpoints');
    // a whole checkpoint: step-N renamed into place (not the step-N.….tmp being written)
    const whole = () =>
      fs.existsSync(ck) && fs.readdirSync(ck).some((d) => /^step-\d+$/.test(d) && fs.existsSync(path.join(ck, d, 'trainer_state.json')));
    for (let i = 0; i < 3000 && !whole(); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(whole(), 'a checkpoint was written');
    process.kill(h.client.pid!, 'SIGKILL');
    await until(h.c, ['preparing', 'running'], 10_000); // restarted and resuming
    await until(h.c, ['done', 'failed'], 120_000);
    assert.equal(h.c.status.state, 'done', h.c.status.message);
    assert.ok(
      h.logs.some((l) => /resumed from .*step-\d+/.test(l)),
      'resumed from a checkpoint',
    );
    assert.ok(fs.existsSync(path.join(runDir, 'adapter', 'adapter_model.safetensors')));
    assert.ok(!fs.readdirSync(path.join(runDir, 'adapter')).some((f) => f.endsWith('.tmp')), 'no half-written adapter file');
    // stop: the run ends as stopped with its checkpoint kept
    const r2 = (await h.c.start(settings({ steps: 200, seqLen: 64 })))!;
    await until(h.c, ['running']);
    await h.c.stop();
    await until(h.c, ['stopped']);
    assert.match(h.c.status.message ?? '', /checkpoint kept/);
    assert.ok(fs.readdirSync(path.join(r2, 'checkpoints')).length > 0);
  } finally {
    h.client.stop();
  }
});

test('bad input starts nothing: a non-model, data outside the workspace, a second run, an untrusted workspace, malformed panel messages', async () => {
  const h = harness(root);
  const outside = tmpDir('elsewhere');
  try {
    assert.match(h.c.refuse(settings({ model: ds.text }))!, /not a model folder/);
    assert.match(h.c.refuse(settings({ data: outside }))!, /outside the workspace/);
    assert.match(h.c.refuse(settings({ data: path.join(root, 'missing') }))!, /cannot be read/);
    const untrusted = harness(root, { trusted: () => false });
    assert.match(untrusted.c.refuse(settings())!, /trusted workspace/);
    assert.equal(await untrusted.c.start(settings()), null);
    assert.ok(untrusted.errors.some((e) => /trusted/.test(e)));
    const before = fs.existsSync(path.join(root, '.lorakit', 'runs')) ? fs.readdirSync(path.join(root, '.lorakit', 'runs')).length : 0;
    const first = await h.c.start(settings({ steps: 100, seqLen: 64 }));
    assert.ok(first);
    assert.equal(await h.c.start(settings()), null, 'a second run is refused');
    assert.ok(h.errors.some((e) => /already going/.test(e)));
    await h.c.stop();
    await until(h.c, ['stopped', 'done']);
    assert.equal(fs.readdirSync(path.join(root, '.lorakit', 'runs')).length, before + 1);
    // the panel: malformed messages are rejected and logged, never acted on
    for (const bad of [
      null,
      { type: 'start' },
      { type: 'start', settings: { ...settings(), rank: 0 } },
      { type: 'pick', field: 'etc' },
      { type: 'launch-missiles' },
    ]) {
      const n = h.logs.length;
      await h.c.fromPanel(bad);
      assert.ok(h.logs.length > n && /rejected a malformed message from the panel/.test(h.logs[h.logs.length - 1]), JSON.stringify(bad));
    }
    assert.equal(fs.readdirSync(path.join(root, '.lorakit', 'runs')).length, before + 1);
  } finally {
    h.client.stop();
  }
});

test('status text, .gitignore and workspace paths', () => {
  assert.match(statusText({ state: 'idle' }).text, /LoRA idle/);
  const s = statusText(
    { state: 'running', runDir: '/r' },
    {
      step: 3,
      total_steps: 10,
      loss: 2.5,
      lr: 1e-3,
      grad_norm: 1,
      tokens_per_s: 812.4,
      step_ms: 1500,
      mem: { weights: 1, lora: 1, optimizer: 1, activations: 1, workspace: 1, total: 5 },
      elapsed_s: 4,
    },
  );
  assert.equal(s.text, '$(sync~spin) LoRA step 3/10 · loss 2.500 · 812 tok/s · ETA 11s');
  const r = tmpDir('gi');
  assert.equal(isGitIgnored(r), false);
  fs.writeFileSync(path.join(r, '.gitignore'), 'node_modules');
  addToGitignore(r);
  assert.equal(fs.readFileSync(path.join(r, '.gitignore'), 'utf8'), 'node_modules\n.lorakit/\n');
  assert.equal(isGitIgnored(r), true);
  assert.ok(inside('/a/b', '/a/b/c') && inside('/a/b', '/a/b') && !inside('/a/b', '/a/bc') && !inside('/a/b', '/a'));
});
