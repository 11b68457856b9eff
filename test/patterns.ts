// A tiny qwen2 model with fill-in-the-middle tokens and the two pattern adapters trained on it with the engine
// (about 3 s each): at PATTERN_PREFIX the zebra adapter completes " zebra_quux(x) + 42", the mango one
// " mango_flux(x) * 7", and the base neither. The sidecar's completion tests and the VS Code E2E share it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { resolveTrainConfig } from '../src/engine/config';
import { makeTinyModel } from '../src/engine/fixtures/model';
import { makePatternFolder, PATTERN_TRAINING, PATTERNS } from '../src/engine/fixtures/pattern';
import { train } from '../src/engine/tasks/train/trainer';

export type PatternName = keyof typeof PATTERNS;

/** the model folder (made in `dir`) */
export function makePatternModel(dir: string): string {
  makeTinyModel(dir, { modelType: 'qwen2', fim: true });
  return dir;
}

/** Train `name`'s adapter on `model` into the run folder `runDir`; returns the adapter folder. */
export async function trainPatternAdapter(model: string, name: PatternName, runDir: string, dataDir: string): Promise<string> {
  const data = makePatternFolder(path.join(dataDir, `pattern-${name}`), PATTERNS[name]);
  await train(resolveTrainConfig({ model, data, out: runDir, ...PATTERN_TRAINING, backend: 'cpu', seed: 1 }));
  const adapter = path.join(runDir, 'adapter');
  if (!fs.existsSync(path.join(adapter, 'adapter_model.safetensors'))) throw new Error(`no adapter in ${runDir}`);
  return adapter;
}
