/** The lorakit.* settings as run settings: the defaults of the panel's form and of a right-click run. */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { TrainSettings } from '../protocol';

export const cfg = () => vscode.workspace.getConfiguration('lorakit');

/** a path from the settings: relative ones are taken from the workspace folder */
export const resolveIn = (root: string | null, p: string) => (path.isAbsolute(p) || !root ? p : path.join(root, p));

export function readConfig(root: string | null): Partial<TrainSettings> {
  const c = cfg();
  const d: Partial<TrainSettings> = {};
  const model = c.get<string>('baseModel');
  if (model) d.model = resolveIn(root, model);
  for (const k of ['rank', 'alpha', 'seqLen', 'batch', 'blocksize'] as const) {
    const v = c.get<number>(k);
    if (typeof v === 'number') d[k] = v;
  }
  const steps = c.get<number>('steps');
  if (typeof steps === 'number' && Number.isInteger(steps) && steps > 0) d.steps = steps; // 0: one epoch
  const q = c.get<string>('quantization');
  if (q === 'none' || q === 'nf4' || q === 'fp4') d.quant = q;
  const b = c.get<string>('backend');
  if (b === 'auto' || b === 'cpu' || b === 'cpu-reference' || b === 'webgpu') d.backend = b;
  return d;
}
