/**
 * lorakit's training step in a process of its own (dist/bench.js --step-child), as each PyTorch peer runs in its
 * own: its peak RSS is then the step's alone (getrusage's high-water mark), not the bench process's, which has
 * grown and freed other sections' WebAssembly memories and arrays before.
 */
import { spawnSync } from 'node:child_process';
import { Run, lorakitStep } from '../bench-step';
import type { QuantConfig } from '../engine/core/qweight';

export interface IsolatedRun extends Run {
  /** the child process's peak resident set (getrusage ru_maxrss), bytes */
  maxRss: number;
}

interface ChildArgs {
  dir: string;
  quant: QuantConfig | null;
  steps: number;
  shape: { seq: number; batch: number; vocab?: number };
}

/** run lorakitStep in a child node (the same flags, the same bundle) and read its result */
export function isolatedStep(dir: string, quant: QuantConfig | null, steps: number, shape: ChildArgs['shape']): IsolatedRun {
  const args: ChildArgs = { dir, quant, steps, shape };
  const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1], '--step-child', JSON.stringify(args)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 16 << 20,
  });
  const last = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !last.startsWith('{')) throw new Error(`the lorakit step's process failed (exit ${r.status}): ${last}`);
  return JSON.parse(last) as IsolatedRun;
}

/** the child's side: argv is [JSON args] */
export function stepChild(argv: string[]): void {
  const a = JSON.parse(argv[0]) as ChildArgs;
  const run = lorakitStep(a.dir, a.quant, undefined, a.steps, a.shape);
  const out: IsolatedRun = { ...run, maxRss: process.resourceUsage().maxRSS * 1024 };
  console.log(JSON.stringify(out));
}
