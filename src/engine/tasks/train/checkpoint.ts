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
import { readJson, removeStaleTmp, writeDirAtomic } from '../../core/fsx';
import { z } from 'zod';

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
  const prev = latestCheckpoint(runDir);
  const kept = prev ? `the previous checkpoint, ${prev}, is kept whole (--resume continues from it)` : 'no checkpoint was written yet';
  writeDirAtomic(
    dir,
    (tmp) => {
      const home = opt.home ?? be;
      const f32 = (name: string, t: Tensor) => ({ name, dtype: 'F32' as const, shape: [...t.shape], data: home.read(t).slice() });
      writeAdapterFiles(tmp, adapter, be);
      writeSafetensors(path.join(tmp, 'optimizer.safetensors'), [
        ...params.map((p, i) => f32(`${p.name}.exp_avg`, opt.m[i])),
        ...params.map((p, i) => f32(`${p.name}.exp_avg_sq`, opt.v[i])),
      ]);
      fs.writeFileSync(path.join(tmp, 'trainer_state.json'), JSON.stringify(state, null, 2) + '\n');
    },
    kept,
  );
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

const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const STATE = z.object({
  step: count,
  totalSteps: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  cursor: count,
  rng: z.object({
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 32 - 1),
    step: count,
  }),
  bestEvalLoss: z.number().optional(),
});

/** trainer_state.json, checked: whole counters in range, the step within the run and equal to the folder's */
export function readTrainerState(dir: string, totalSteps?: number): TrainerState {
  const file = path.join(dir, 'trainer_state.json');
  const r = STATE.safeParse(readJson(file));
  if (!r.success) {
    const i = r.error.issues[0];
    throw new UserError(`"${i.path.join('.')}" is invalid (${i.message})`, file);
  }
  const s = r.data;
  const named = /^step-(\d+)$/.exec(path.basename(dir));
  if (named && Number(named[1]) !== s.step)
    throw new UserError(`"step" is ${s.step}, but the checkpoint folder is ${path.basename(dir)}`, file);
  if (totalSteps !== undefined && s.step > totalSteps) throw new UserError(`"step" ${s.step} is past the run's ${totalSteps} steps`, file);
  if (s.rng.step !== s.step) throw new UserError(`"rng.step" ${s.rng.step} is not "step" ${s.step}`, file);
  return s;
}

/**
 * The newest checkpoint that loads whole, restored into the adapter and the optimizer; a damaged one (truncated,
 * edited) is skipped for the one before it, and said so through `log`. Undefined when there is none.
 */
export function resumeCheckpoint(
  runDir: string,
  adapter: LoraAdapter,
  opt: OptState,
  be: Backend,
  totalSteps: number,
  log: (l: string) => void,
): { dir: string; state: TrainerState } | undefined {
  const steps = listSteps(runDir).reverse();
  let first: UserError | undefined;
  for (const s of steps) {
    const dir = checkpointDir(runDir, s);
    try {
      const state = loadCheckpoint(dir, adapter, opt, be, totalSteps);
      if (first) log(`falling back to ${dir}: the newer checkpoint is damaged (${first.message})`);
      return { dir, state };
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      first ??= e;
    }
  }
  if (first) throw new UserError(`no checkpoint of this run loads whole; the newest: ${first.message}`, runDir);
  return undefined;
}

/** Remove what killed processes left half-written: `step-N.PID.N.tmp` checkpoints and temporary files. */
export function removeStaleCheckpointTmp(runDir: string): string[] {
  return [...removeStaleTmp(path.join(runDir, 'checkpoints')), ...removeStaleTmp(runDir)];
}

/** Restore adapter weights and optimizer moments in place; returns the trainer state. */
export function loadCheckpoint(dir: string, adapter: LoraAdapter, opt: OptState, be: Backend, totalSteps?: number): TrainerState {
  const state = readTrainerState(dir, totalSteps);
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
