// One table of training settings (src/engine/config.ts): the protocol's TrainSettings, the lorakit.* settings in
// package.json, the panel's defaults and the CLI's flags agree with it, and every value is range-checked.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Field, FieldName, TRAIN_FIELDS, resolveTrainConfig, trainDefaults } from '../../src/engine/config';
import type { StepMetrics } from '../../src/engine/tasks/train/trainer';
import { StepEvent, TrainSettings } from '../../src/protocol';
import { DEFAULT_SETTINGS } from '../../src/extension/controller';
import { lorakit } from '../helpers';

const fields = Object.entries(TRAIN_FIELDS) as [FieldName, Field][];
const valid: TrainSettings = { ...DEFAULT_SETTINGS, model: 'm', data: 'd' } as TrainSettings;
const shared = fields.filter(([k]) => k in TrainSettings.shape);

test('the protocol accepts exactly the ranges and values of the table for every setting it carries', () => {
  assert.ok(TrainSettings.safeParse(valid).success, 'the panel defaults are valid settings');
  assert.ok(shared.length >= 12, `settings shared with the protocol: ${shared.map(([k]) => k)}`);
  for (const [k, f] of shared) {
    const ok = (v: unknown) => TrainSettings.safeParse({ ...valid, [k]: v }).success;
    if (f.values) {
      for (const v of f.values) assert.ok(ok(v), `${k}: "${v}" is in the table`);
      assert.ok(!ok('no-such-value'), `${k}: a value outside the table`);
    }
    if (f.kind !== 'int' && f.kind !== 'number') continue;
    const step = f.kind === 'int' ? 1 : 1e-9;
    if (f.min !== undefined) {
      assert.ok(ok(f.min), `${k}: min ${f.min}`);
      assert.ok(!ok(f.min - step), `${k}: below min`);
    }
    if (f.above !== undefined) assert.ok(!ok(f.above), `${k}: ${f.above} is not above ${f.above}`);
    if (f.max !== undefined) {
      assert.ok(ok(f.max), `${k}: max ${f.max}`);
      assert.ok(!ok(f.max * 2 + 1), `${k}: above max`);
    } else assert.ok(ok(1e6), `${k}: no upper bound in the table`);
    if (f.kind === 'int' && f.max !== f.min) assert.ok(!ok((f.min ?? 1) + 0.5), `${k}: a fraction`);
  }
});

test('package.json settings and the panel defaults are the table defaults', () => {
  const props = JSON.parse(fs.readFileSync('package.json', 'utf8')).contributes.configuration.properties;
  const names: Partial<Record<FieldName, string>> = {
    rank: 'rank',
    alpha: 'alpha',
    quant: 'quantization',
    blocksize: 'blocksize',
    seqLen: 'seqLen',
    batch: 'batch',
    backend: 'backend',
    steps: 'steps',
  };
  const d = trainDefaults();
  for (const [k, setting] of Object.entries(names) as [FieldName, string][]) {
    const p = props[`lorakit.${setting}`];
    if (!p) continue;
    if (d[k] !== undefined) assert.equal(p.default, d[k], `lorakit.${setting} default`);
    const f: Field = TRAIN_FIELDS[k];
    // lorakit.steps 0 means "one epoch" (the table's steps is then unset), so its minimum is 0, not the table's 1
    if (f.min !== undefined && p.minimum !== undefined) assert.equal(p.minimum, k === 'steps' ? 0 : f.min, `lorakit.${setting} minimum`);
    if (f.max !== undefined && p.maximum !== undefined) assert.equal(p.maximum, f.max, `lorakit.${setting} maximum`);
    if (f.values && p.enum) assert.deepEqual([...p.enum].map(String), [...f.values], `lorakit.${setting} values`);
  }
  for (const [k] of shared)
    if (k in DEFAULT_SETTINGS && d[k] !== undefined)
      assert.equal((DEFAULT_SETTINGS as Record<string, unknown>)[k], d[k], `panel default ${k}`);
});

test('the CLI lists every training flag with its default, and checks each against the table', () => {
  const help = lorakit('train', '--help').out;
  for (const [, f] of fields) assert.match(help, new RegExp(`--${f.flag}\\b`), `--${f.flag} in train --help`);
  assert.match(help, /--seq-len 512 /);
  assert.throws(() => resolveTrainConfig({ model: 'm', data: 'd', out: 'o', rank: 0 }), /--rank must be ≥ 1 and ≤ 1024, got 0/);
  assert.throws(
    () => resolveTrainConfig({ model: 'm', data: 'd', out: 'o', blocksize: 48, quant: 'nf4' }),
    /--blocksize must be a power of two from 32 to 4096, got 48/,
  );
  assert.throws(() => resolveTrainConfig({ model: 'm', data: 'd', out: 'o', steps: 3, epochs: 2 }), /give --steps or --epochs, not both/);
  assert.throws(
    () => resolveTrainConfig({ model: 'm', data: 'd', out: 'o', schedule: 'cosin' }),
    /--schedule must be one of cosine, linear, constant/,
  );
  const c = resolveTrainConfig({ model: 'm', data: 'd', out: 'o' });
  assert.equal(c.seqLen, 512);
  assert.equal(c.epochs, 1);
  assert.equal(c.checkpointEvery, 10);
  assert.equal(c.quant, null);
});

test("the trainer's step metrics and the protocol's step event are the same shape", () => {
  const m: StepMetrics = {
    step: 1,
    total_steps: 2,
    loss: 1,
    lr: 0,
    grad_norm: 0,
    tokens_per_s: 1,
    step_ms: 1,
    mem: { weights: 0, lora: 0, optimizer: 0, activations: 0, workspace: 0, total: 0 },
    elapsed_s: 0,
  };
  const e: StepEvent = m; // compile-time: every metric field is an event field
  const back: StepMetrics = StepEvent.parse(e); // and the parsed event is a full StepMetrics
  assert.deepEqual(Object.keys(back).sort(), Object.keys(m).sort());
  assert.deepEqual(Object.keys(StepEvent.shape).sort(), Object.keys(m).sort());
});
