/**
 * Checkpoints: checkpoints/step-N/ holds the adapter (a PEFT folder, usable as is), the AdamW moments and the
 * trainer state (step, data cursor, RNG). Each is written to a temporary folder and renamed into place, so a
 * crash leaves the previous checkpoint whole.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Backend, Tensor } from '../../core/backend';
import { UserError } from '../../core/errors';
import { SafetensorsFile, writeSafetensors } from '../../formats/safetensors';
import { LoraAdapter } from '../../model/lora';
import { writeAdapterFiles } from '../../model/peft';
import { writeDirAtomic, readJson } from '../../core/fsx';

export interface TrainerState {
  step: number; // optimizer steps done
  totalSteps: number;
  /** training samples (windows) consumed so far: the data cursor */
  cursor: number;
  /** dropout masks come from hash(seed, step, micro-batch), so (seed, step) is the whole RNG state */
  rng: { seed: number; step: number };
  bestEvalLoss?: number;
}

export interface OptState {
  m: Tensor[];
  v: Tensor[];
  /** where m and v live when that is not the training backend: the host, for a paged optimizer */
  home?: Backend;
}

export function checkpointDir(runDir: string, step: number): string {
  return path.join(runDir, 'checkpoints', `step-${step}`);
}

export function saveCheckpoint(
  runDir: string,
  state: TrainerState,
  adapter: LoraAdapter,
  opt: OptState,
  be: Backend,
  keep: number,
): string {
  const dir = checkpointDir(runDir, state.step);
  const params = adapter.params();
  writeDirAtomic(dir, (tmp) => {
    const home = opt.home ?? be;
    const f32 = (name: string, t: Tensor) => ({ name, dtype: 'F32' as const, shape: [...t.shape], data: home.read(t).slice() });
    writeAdapterFiles(tmp, adapter, be);
    writeSafetensors(path.join(tmp, 'optimizer.safetensors'), [
      ...params.map((p, i) => f32(`${p.name}.exp_avg`, opt.m[i])),
      ...params.map((p, i) => f32(`${p.name}.exp_avg_sq`, opt.v[i])),
    ]);
    fs.writeFileSync(path.join(tmp, 'trainer_state.json'), JSON.stringify(state, null, 2) + '\n');
  });
  prune(runDir, keep);
  return dir;
}

function listSteps(runDir: string): number[] {
  const root = path.join(runDir, 'checkpoints');
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .map((n) => /^step-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => !!m && fs.existsSync(path.join(root, m[0], 'trainer_state.json')))
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

function prune(runDir: string, keep: number): void {
  const steps = listSteps(runDir);
  for (const s of steps.slice(0, Math.max(0, steps.length - keep))) fs.rmSync(checkpointDir(runDir, s), { recursive: true, force: true });
}

export function latestCheckpoint(runDir: string): string | undefined {
  const steps = listSteps(runDir);
  return steps.length ? checkpointDir(runDir, steps[steps.length - 1]) : undefined;
}

/** Restore adapter weights and optimizer moments in place; returns the trainer state. */
export function loadCheckpoint(dir: string, adapter: LoraAdapter, opt: OptState, be: Backend): TrainerState {
  const state = readJson(path.join(dir, 'trainer_state.json')) as TrainerState;
  const ad = new SafetensorsFile(path.join(dir, 'adapter_model.safetensors'));
  const os = new SafetensorsFile(path.join(dir, 'optimizer.safetensors'));
  adapter.params().forEach((p, i) => {
    const need = (f: SafetensorsFile, name: string, t: Tensor, on: Backend) => {
      if (!f.tensors.has(name)) throw new UserError(`checkpoint lacks "${name}" (written by a different configuration?)`, f.file);
      const data = f.readF32(name);
      if (data.length !== t.shape.reduce((a, b) => a * b, 1))
        throw new UserError(`"${name}" has the wrong size for this configuration`, f.file);
      on.write(t, data);
    };
    need(ad, `base_model.model.${p.name}`, p.t, be);
    need(os, `${p.name}.exp_avg`, opt.m[i], opt.home ?? be);
    need(os, `${p.name}.exp_avg_sq`, opt.v[i], opt.home ?? be);
  });
  return state;
}
