/**
 * The server's test fixture: a tiny qwen2 model with fill-in-the-middle tokens, adapters trained on the pattern
 * folders (zebra and mango: each completes PATTERN_PREFIX with its own pattern), and a server over a session.
 */
import * as path from 'node:path';
import { CpuBackend } from '../src/engine/backend/cpu/cpu';
import {
  GenerationSession,
  PATTERNS,
  PATTERN_TRAINING,
  makePatternFolder,
  makeTinyModel,
  openModel,
  resolveTrainConfig,
  train,
} from '../src/engine';
import { ServeOptions, startServer } from '../src/serve/server';

export type PatternName = keyof typeof PATTERNS;

/** A tiny model folder, and (when asked) an adapter per pattern trained on it: `{ model, adapters: { zebra: dir, … } }`. */
export async function patternModel(root: string, patterns: PatternName[] = []) {
  const model = path.join(root, 'model');
  makeTinyModel(model, { modelType: 'qwen2', fim: true });
  const adapters: Partial<Record<PatternName, string>> = {};
  for (const p of patterns) {
    const data = makePatternFolder(path.join(root, `data-${p}`), PATTERNS[p]);
    const cfg = resolveTrainConfig({ model, data, out: path.join(root, `run-${p}`), ...PATTERN_TRAINING, backend: 'cpu', seed: 1 });
    const r = await train(cfg);
    adapters[p] = r.adapterDir!;
  }
  return { model, adapters };
}

/** A session over the model, with the adapters loaded under their names. */
export function openSession(model: string, adapters: Partial<Record<string, string>> = {}): GenerationSession {
  const { model: m, tokenizer } = openModel(model, new CpuBackend());
  const session = new GenerationSession(m, tokenizer, { modelDir: model });
  for (const [name, dir] of Object.entries(adapters)) session.loadAdapter(name, dir!);
  return session;
}

/** A server over a session on a free port of 127.0.0.1 (the base model's id is "tiny"), and the lines it logs. */
export async function serve(session: GenerationSession, o: Partial<ServeOptions> = {}) {
  const logs: string[] = [];
  const server = await startServer(session, { modelId: 'tiny', port: 0, log: (l) => logs.push(l), ...o });
  return { url: server.url, logs, close: () => server.close() };
}
