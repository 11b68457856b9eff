// The extension's behaviour in VS Code, without VS Code and without a sidecar: the Controller with a fake Ui and a
// stub client. Settings that change after start-up, the right-click's run settings and confirmation, batched step
// events, the paused wording, the adapters' names and losses, merged models, workspace trust and the shared
// formatting (issue 10, items 1, 4, 5, 6, 8, 9, 11).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Controller, DEFAULT_SETTINGS, Ui, statusText } from '../../src/extension/controller';
import { confirmDetail } from '../../src/extension/confirm';
import {
  badAdapterName,
  listAdapters,
  listMerged,
  mergedDir,
  renameAdapter,
  setActiveAdapter,
  shortTime,
} from '../../src/extension/project';
import { EstimateResult, StepEvent, ToPanel, TrainSettings, parseFromSidecar } from '../../src/protocol';
import { adapterRow, deviceLabel, formatLoss, formatSkipped } from '../../src/protocol/format';
import { tmpDir } from '../helpers';

function fake(over: Partial<Ui> = {}, config: Partial<TrainSettings> = {}) {
  const posted: ToPanel[] = [];
  const errors: string[] = [];
  const actions: string[] = [];
  const cfg = { current: config };
  const ui: Ui = {
    post: (m) => void posted.push(m),
    status: () => {},
    info: async () => undefined,
    error: async (m) => (errors.push(m), undefined),
    log: () => {},
    defaults: () => ({ ...cfg.current }),
    trusted: () => true,
    pick: async () => undefined,
    adapterAction: async (a, d) => void actions.push(`${a} ${d}`),
    adaptersChanged: () => {},
    ...over,
  };
  const requests: string[] = [];
  const client = {
    alive: true,
    request: async (m: string) => (requests.push(m), m === 'train/start' ? { runDir: 'x' } : {}),
    start() {},
    stop() {},
  } as any;
  return { ui, posted, errors, actions, cfg, client, requests };
}

const mem = { weights: 1, lora: 1, optimizer: 1, activations: 1, workspace: 1, total: 5 };
const step = (n: number, over: Partial<StepEvent> = {}): StepEvent => ({
  step: n,
  total_steps: 1000,
  loss: 3 - n / 1000,
  lr: 1e-3,
  grad_norm: 1,
  tokens_per_s: 800,
  step_ms: 80,
  mem,
  elapsed_s: n,
  ...over,
});

/** a project with a model folder and a data folder */
function project() {
  const root = tmpDir('ext-ui');
  const model = path.join(root, 'model');
  fs.mkdirSync(model);
  fs.writeFileSync(path.join(model, 'config.json'), '{}');
  fs.mkdirSync(path.join(root, 'notes'));
  return { root, model, data: path.join(root, 'notes') };
}

test('1: settings changed after start-up reach the Controller and the open panel; the panel’s own edits stay', async () => {
  const p = project();
  const f = fake({}, { rank: 8 });
  const c = new Controller(p.root, f.client, f.ui);
  assert.equal(c.settings.model, undefined);
  // the panel sends its form with each estimate: rank 32 from the panel
  await c.fromPanel({ type: 'estimate', settings: { ...DEFAULT_SETTINGS, model: '/elsewhere', data: p.data, rank: 32 } });
  // Choose Base Model saves lorakit.baseModel
  f.cfg.current = { rank: 8, model: p.model };
  assert.deepEqual(c.configChanged(), { model: p.model });
  assert.equal(c.settings.model, p.model);
  assert.equal(c.settings.rank, 32, 'an unrelated setting does not undo the panel’s edit');
  assert.deepEqual(f.posted.at(-1), { type: 'settings', settings: { model: p.model } });
  // nothing changed: nothing posted
  const n = f.posted.length;
  assert.deepEqual(c.configChanged(), {});
  assert.equal(f.posted.length, n);
  // a reopened panel gets the new model in its init
  const init = c.initMessage();
  assert.equal(init.type === 'init' && init.settings.model, p.model);
  // lorakit.steps 200, then back to 0 (one epoch)
  f.cfg.current = { rank: 8, model: p.model, steps: 200 };
  assert.deepEqual(c.configChanged(), { steps: 200 });
  f.cfg.current = { rank: 8, model: p.model };
  assert.deepEqual(c.configChanged(), { epochs: 1 });
  assert.equal(c.settings.steps, undefined);
});

test('4: the right-click uses the panel’s run settings, leaves its form alone, and confirms steps and duration', async () => {
  const p = project();
  const f = fake({}, { steps: 200 });
  const c = new Controller(p.root, f.client, f.ui);
  await c.fromPanel({
    type: 'estimate',
    settings: { ...DEFAULT_SETTINGS, model: p.model, data: p.root, rank: 32, quant: 'nf4', doubleQuant: true, steps: 200 },
  });
  const s = c.runSettingsFor(p.model, p.data);
  assert.equal(s.rank, 32);
  assert.equal(s.quant, 'nf4');
  assert.equal(s.steps, 200);
  assert.equal(s.data, p.data);
  // no run measured yet: the duration is unknown, not invented
  assert.equal(c.expectedDuration(s), null);
  const est: EstimateResult = {
    bytes: { ...mem, total: 3 * 2 ** 20 },
    fits: true,
    device: { name: 'cpu (system memory)', bytes: 8 * 2 ** 30 },
    params: { base: 1, trainable: 1, quantized: 1 },
  };
  const scan = { files: 4, bytes: 4000, skipped: { 'binary file type': 1 } };
  let text = confirmDetail({ settings: s, scan, estimate: est, duration: null });
  assert.match(text, /LoRA r=32, alpha 16, all-linear; NF4 base \(block 64, double quantization\)/);
  assert.match(text, /Training: 200 steps; seq 512 × batch 4/);
  assert.match(text, /Expected duration: unknown until a run on this machine has been measured/);
  assert.match(text, /Data: 4 files \(3\.9 KiB\) from .*notes; skipped 1 binary file$/m);
  assert.match(text, /Memory estimate: 3\.0 MiB of 8\.0 GiB \(cpu, system memory\)$/m);
  // after a run: from its measured tokens/s (the median): 200 steps × 512 × 4 tokens at 800 tok/s = 512 s
  c.onEvent({ event: 'train/steps', params: { steps: [step(1, { tokens_per_s: 100 }), step(2), step(3)] } });
  const d = c.expectedDuration(s)!;
  assert.equal(d.tokensPerS, 800);
  assert.equal(d.seconds, 512);
  text = confirmDetail({ settings: s, scan, estimate: est, duration: d });
  assert.match(text, /Expected duration: about 8m32s at the last run's 800 tokens\/s/);
  // one epoch: the count is not known before tokenizing
  text = confirmDetail({ settings: { ...s, steps: undefined, epochs: 1 }, scan, estimate: est, duration: null });
  assert.match(text, /Training: 1 epoch \(the step count is known once the data is tokenized\)/);
  // starting the run does not send the panel a new form
  f.posted.length = 0;
  assert.ok(await c.start(s));
  assert.ok(!f.posted.some((m) => m.type === 'settings'));
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(c.status.runDir!, 'settings.json'), 'utf8')).rank, 32);
});

test('6: batched step events are all kept, in order; the old single-step event and odd event names are refused', () => {
  const f = fake();
  const c = new Controller(null, f.client, f.ui);
  const batch = Array.from({ length: 1000 }, (_, i) => step(i + 1));
  for (let i = 0; i < 1000; i += 100) {
    const m = parseFromSidecar({ event: 'train/steps', params: { steps: batch.slice(i, i + 100) } });
    assert.equal(m.kind, 'event');
    if (m.kind === 'event') c.onEvent(m.msg);
  }
  assert.equal(parseFromSidecar({ event: 'train/step', params: step(1001) }).kind, 'invalid', 'the sidecar sends batches only');
  assert.equal(c.steps.length, 1000, 'no step dropped');
  assert.deepEqual(
    c.steps.map((s) => s.step),
    Array.from({ length: 1000 }, (_, i) => i + 1),
  );
  const sent = f.posted.filter((m) => m.type === 'steps');
  assert.equal(sent.length, 10);
  assert.equal(
    sent.reduce((a, m) => a + (m.type === 'steps' ? m.steps.length : 0), 0),
    1000,
  );
  for (const name of ['toString', 'constructor', '__proto__', 'hasOwnProperty'])
    assert.equal(parseFromSidecar({ event: name, params: {} }).kind, 'invalid', name);
  assert.equal(parseFromSidecar({ event: 'train/steps', params: { steps: [{ step: 1 }] } }).kind, 'invalid');
});

test('9: wording: paused at step N; one device name without nested parentheses; skipped files counted as files', () => {
  const f = fake();
  const c = new Controller(null, f.client, f.ui);
  c.onEvent({ event: 'train/state', params: { state: 'paused', runDir: '/r', message: 'stopped at step 56; checkpoint kept' } });
  assert.equal(c.status.message, 'paused at step 56; Resume continues from its checkpoint');
  const last = f.posted.at(-1);
  assert.equal(last?.type === 'status' && last.status.message, c.status.message);
  assert.match(statusText(c.status).tooltip, /paused at step 56/);
  assert.equal(deviceLabel('cpu (system memory)'), 'cpu, system memory');
  assert.equal(`(${deviceLabel('cpu (system memory)')})`.match(/\(/g)!.length, 1);
  assert.equal(formatSkipped({}), '');
  assert.equal(formatSkipped({ 'binary file type': 1 }), 'skipped 1 binary file');
  assert.equal(formatSkipped({ 'binary file type': 3 }), 'skipped 3 binary files');
  assert.equal(
    formatSkipped({ 'binary file type': 3, 'matched .gitignore': 2, 'too large (9 bytes > 1)': 1, 'too large (5 bytes > 1)': 1 }),
    '7 skipped: 3 binary files, 2 paths in .gitignore, 2 files too large',
  );
});

test('8: adapters are named (data folder + time, or the given name) with rank, steps and 4-digit losses; rename', () => {
  const p = project();
  const mk = (run: string, info: object) => {
    const dir = path.join(p.root, '.lorakit', 'runs', run);
    fs.mkdirSync(path.join(dir, 'adapter'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'adapter', 'adapter_config.json'), JSON.stringify({ r: 16 }));
    fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify(info));
    fs.writeFileSync(path.join(dir, 'settings.json'), JSON.stringify({ data: p.data }));
    return path.join(dir, 'adapter');
  };
  const a = mk('2025-03-04T17-05-09-123Z', { started: '2025-03-04T17:05:09.123Z', steps: 200, finalLoss: 2.41712, finalEvalLoss: 2.41749 });
  mk('2025-03-05T09-00-00-000Z', { started: '2025-03-05T09:00:00.000Z', steps: 50, finalLoss: 2.41781, finalEvalLoss: 2.41699 });
  setActiveAdapter(p.root, a);
  const list = listAdapters(p.root);
  assert.equal(list.length, 2);
  const first = list.find((x) => x.dir === a)!;
  assert.equal(first.name, `notes · ${shortTime('2025-03-04T17:05:09.123Z')}`);
  assert.match(first.name, /^notes · \d{4}-\d\d-\d\d \d\d:\d\d$/);
  assert.deepEqual([first.rank, first.steps, first.trainLoss, first.evalLoss], [16, 200, 2.41712, 2.41749]);
  const rows = list.map(adapterRow);
  assert.notEqual(rows[0].description, rows[1].description, 'two adapters can be told apart');
  const row = adapterRow(first);
  assert.equal(row.description, 'active · r16 · 200 steps · train 2.417 · eval 2.417');
  assert.equal(adapterRow(list.find((x) => x.dir !== a)!).description, 'r16 · 50 steps · train 2.418 · eval 2.417');
  assert.equal(formatLoss(0.0883149), '0.08831');
  assert.ok(!/T\d\d-\d\d-\d\d/.test(row.label), 'no raw ISO timestamp in the label');
  renameAdapter(a, '  python style  ');
  assert.equal(listAdapters(p.root).find((x) => x.dir === a)!.name, 'python style');
  assert.equal(fs.readFileSync(path.join(path.dirname(a), 'name.txt'), 'utf8'), 'python style\n');
  renameAdapter(a, '');
  assert.match(listAdapters(p.root).find((x) => x.dir === a)!.name, /^notes · /);
  assert.match(badAdapterName('a\nb')!, /one line/);
  assert.match(badAdapterName('x'.repeat(81))!, /80/);
  assert.equal(badAdapterName('fine'), null);
});

test('5: merged models go to a new .lorakit/merged/ folder and are listed', () => {
  const p = project();
  const adapter = path.join(p.root, '.lorakit', 'runs', 'r1', 'adapter');
  const out = mergedDir(p.root, adapter);
  assert.equal(out, path.join(p.root, '.lorakit', 'merged', 'r1'));
  assert.deepEqual(listMerged(p.root), []);
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'config.json'), '{}');
  assert.equal(mergedDir(p.root, adapter), out + '-2', 'an existing merge is never overwritten');
  const f = fake();
  const c = new Controller(p.root, f.client, f.ui);
  assert.deepEqual(
    c.merged().map((m) => m.name),
    ['r1'],
  );
  c.adaptersChanged();
  const last = f.posted.at(-1);
  assert.ok(last?.type === 'adapters' && last.merged?.[0].dir === out);
});

test('11: in an untrusted workspace Compare, Activate, Merge and training are refused with one clear line; Reveal is not', async () => {
  const p = project();
  const f = fake({ trusted: () => false });
  const c = new Controller(p.root, f.client, f.ui);
  for (const action of ['compare', 'activate', 'merge'] as const) {
    await c.fromPanel({ type: 'adapter', action, dir: '/a/adapter' });
    await c.adapterAction(action, '/a/adapter');
  }
  assert.deepEqual(f.actions, []);
  assert.equal(f.errors.length, 6);
  for (const e of f.errors) assert.match(e, /^lorakit: [^\n]+: it needs a trusted workspace\. Trust this folder/);
  assert.match(c.untrusted('generate')!, /Generating runs the model/);
  await c.adapterAction('reveal', '/a/adapter');
  assert.deepEqual(f.actions, ['reveal /a/adapter']);
  const trusted = fake();
  const c2 = new Controller(p.root, trusted.client, trusted.ui);
  await c2.adapterAction('compare', '/a/adapter');
  assert.deepEqual(trusted.actions, ['compare /a/adapter']);
  // the settings that name models or folders are not taken from an untrusted workspace
  const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8'));
  assert.deepEqual(pkg.capabilities.untrustedWorkspaces.restrictedConfigurations, ['lorakit.baseModel', 'lorakit.modelsFolder']);
  assert.equal(pkg.contributes.configuration.properties['lorakit.steps'].default, 0);
});
