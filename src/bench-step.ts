/**
 * One LoRA training step, timed: the bench's reference workload (DESIGN.md §8) and the loop that measures a backend
 * on it (forward, backward, AdamW on every LoRA parameter), shared by the bench and the GPU check.
 */
import * as os from 'node:os';
import { CpuBackend } from './engine/backend/cpu/cpu';
import { WebGpuBackend } from './engine/backend/webgpu/webgpu';
import { Backend, MemFigures } from './engine/core/backend';
import { QuantConfig } from './engine/core/qweight';
import { Rng } from './engine/core/rng';
import { defaultLoraConfig } from './engine/formats/lora-config';
import { LoraAdapter } from './engine/model/lora';
import { openModel } from './engine/tasks/session';

/** the reference workload: a ~10M-parameter Llama-shaped model, LoRA r=16 on every linear layer, seq 256 × batch 4 */
export const W = { vocab: 8192, hidden: 256, ff: 768, layers: 8, heads: 8, kv: 4, seq: 256, batch: 4, rank: 16 };
export const STEPS = Number(process.env.BENCH_STEPS ?? 7);

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export interface Run {
  backend: string;
  tokensPerS: number;
  bestTokensPerS: number;
  stepMs: number;
  peak: MemFigures;
  rssPeak: number;
}

export function lorakitStep(
  dir: string,
  quant: QuantConfig | null = null,
  gpu?: WebGpuBackend,
  steps = STEPS,
  shape: { seq: number; batch: number; vocab?: number } = { seq: W.seq, batch: W.batch },
): Run {
  const be: Backend = gpu ?? new CpuBackend({ threads: os.availableParallelism() }); // a fresh WebAssembly memory: its growth is this run's
  const { model } = openModel(dir, be, undefined, quant);
  model.adapter = LoraAdapter.create(model.spec, defaultLoraConfig({ r: W.rank, alpha: 2 * W.rank, dropout: 0 }), be, new Rng(0));
  model.adapter.allocGrads(be);
  const params = model.adapter.params();
  const m = params.map((p) => be.zeros([...p.t.shape], 'optimizer'));
  const v = params.map((p) => be.zeros([...p.t.shape], 'optimizer'));
  const rng = new Rng(1);
  const n = shape.batch * shape.seq;
  const ids = Int32Array.from({ length: n }, () => Math.floor(rng.next() * (shape.vocab ?? W.vocab)));
  const targets = Int32Array.from({ length: n }, (_, i) => ids[(i + 1) % n]);
  const times: number[] = [];
  let rssPeak = 0;
  for (let s = 0; s < steps + 2; s++) {
    const t = performance.now();
    model.adapter.zeroGrads(be);
    const r = model.lossAndGrad(ids, targets, shape.batch, shape.seq, 1 / n, s);
    be.read(r.loss);
    be.free(r.loss);
    params.forEach((p, i) =>
      be.adamw(p.t, p.g()!, m[i], v[i], { lr: 2e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: s + 1 }),
    );
    if (s >= 2) times.push(performance.now() - t);
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  }
  const stepMs = median(times);
  be.dispose();
  return {
    backend: be.name,
    tokensPerS: (n * 1000) / stepMs,
    bestTokensPerS: (n * 1000) / Math.min(...times),
    stepMs,
    peak: { ...be.mem.peak },
    rssPeak,
  };
}
