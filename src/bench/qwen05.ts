/**
 * The Qwen2.5-0.5B-shaped model the bench measures (random weights, tied embeddings, q/k/v biases), generated once
 * per run on first use, in bf16 and in f32 (the same weights), and shared by the decode and training-step sections.
 */
import * as path from 'node:path';
import { makeTinyModel, TinyModelOptions } from '../engine/fixtures/model';

/** Qwen2.5-0.5B's shape (head dim 64, q/k/v biases, tied embeddings, rope theta 1e6) */
export const QWEN05: TinyModelOptions = {
  modelType: 'qwen2',
  configVocab: 151936,
  vocab: 512,
  hidden: 896,
  intermediate: 4864,
  layers: 24,
  heads: 14,
  kvHeads: 2,
  tied: true,
  std: 0.02,
  ropeTheta: 1e6,
  extraConfig: { attention_bias: true },
};

export class QwenModels {
  private dirs: { bf16?: string; f32?: string } = {};
  /** `root`: a temporary folder the caller removes */
  constructor(private readonly root: string) {}

  bf16(): string {
    return (this.dirs.bf16 ??= this.make('BF16', 2));
  }

  f32(): string {
    return (this.dirs.f32 ??= this.make('F32', 4));
  }

  private make(dtype: 'BF16' | 'F32', shards: number): string {
    const dir = path.join(this.root, `qwen05-${dtype.toLowerCase()}`);
    console.log(`generating the Qwen2.5-0.5B-shaped model in ${dtype} (random weights)…`);
    makeTinyModel(dir, { ...QWEN05, dtype, shards });
    return dir;
  }
}
