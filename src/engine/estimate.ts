/**
 * The memory estimate, from config.json alone, before anything is loaded: bytes per tag as the CPU engine
 * allocates them (weights in f32, LoRA weights and gradients, AdamW moments, saved activations and the peak of
 * the loss computation), and whether the total fits in the machine's memory.
 */
import * as os from 'node:os';
import { MemFigures } from './backend/backend';
import { ModelSpec } from './formats/config';
import { LINEAR_NAMES, LoraConfig, isTarget, modulePath, rankFor } from './lora/config';
import { expectedTensors, linearShape } from './model/weights';

export interface EstimateInput {
  spec: ModelSpec;
  lora: LoraConfig;
  seqLen: number;
  batch: number;
}

export interface Estimate {
  bytes: MemFigures;
  params: { base: number; trainable: number };
  device: { name: string; bytes: number };
  fits: boolean;
}

export function baseParams(spec: ModelSpec): number {
  let n = 0;
  for (const [, shape] of expectedTensors(spec)) n += shape.reduce((a, b) => a * b, 1);
  return n;
}

export function estimateMemory(e: EstimateInput): Estimate {
  const { spec, lora } = e;
  const { hidden: C, intermediate: FF, heads: H, kvHeads: KV, headDim: D, vocabSize: V, layers: L } = spec;
  const N = e.batch * e.seqLen;
  const T = e.seqLen;
  const f = 4;
  let trainable = 0;
  let loraActs = 0; // per layer, per token: h (r) and, with dropout, the dropped input and its mask
  for (const name of LINEAR_NAMES) {
    const p = modulePath(0, name);
    if (!isTarget(lora, p)) continue;
    const [out, inp] = linearShape(spec, name);
    const r = rankFor(lora, p);
    trainable += r * (out + inp);
    loraActs += r + (lora.dropout > 0 ? 2 * inp : 0);
  }
  trainable *= L;
  const params = baseParams(spec);
  // saved per layer and token: x, n1.y, q, k, v, attn.out, x2, n2.y, gate, up, h (+ rstd ×2, qk-norm copies)
  const perToken = 4 * C + 2 * H * D + 2 * KV * D + 3 * FF + 2 + (spec.qkNorm ? H * D + KV * D + H + KV : 0) + loraActs;
  const probs = e.batch * H * T * T; // attention probabilities kept for the backward pass
  const saved = L * (N * perToken + probs);
  const top = N * (2 * C + 1); // last hidden state and final norm
  const lossPeak = 2 * N * V; // logits and their gradient exist together
  const bytes = {
    weights: params * f,
    lora: 2 * trainable * f, // weights and gradients
    optimizer: 2 * trainable * f,
    activations: (saved + top + lossPeak) * f,
    workspace: 2 * Math.max(64, 2 * T) * (D / 2) * f + wasmArenaBytes(spec, e.batch, T), // RoPE tables, kernel memory
    total: 0,
  };
  bytes.total = bytes.weights + bytes.lora + bytes.optimizer + bytes.activations + bytes.workspace;
  const device = { name: 'cpu (system memory)', bytes: os.totalmem() };
  return { bytes, params: { base: params, trainable }, device, fits: bytes.total < 0.9 * device.bytes };
}

const up4 = (n: number) => (n + 3) & ~3;
const up8 = (n: number) => (n + 7) & ~7;

/**
 * The CPU backend's WebAssembly memory: the largest set of operands one kernel call holds there (see gemm.ts and
 * attention.ts for the layouts), in 64 KiB pages; it starts at 1 MiB and grows, never shrinks.
 */
export function wasmArenaBytes(spec: ModelSpec, B: number, T: number): number {
  const { hidden: C, intermediate: FF, heads: H, kvHeads: KV, headDim: D, vocabSize: V } = spec;
  const N = B * T;
  // one gemm C (M × n) = A (M × K) · B: A in place, B raw and packed, C padded
  const gemm = (M: number, n: number, K: number) => M * K + 2 * up8(n) * K + up4(M) * up8(n);
  const shapes: [number, number][] = [[H * D, C], [KV * D, C], [C, H * D], [FF, C], [C, FF], [V, C]];
  let floats = 0;
  for (const [out, inp] of shapes) floats = Math.max(floats, gemm(N, out, inp), gemm(N, inp, out));
  const NpT = up8(T), NpD = up8(D);
  const attn =
    N * (2 * H * D + 2 * KV * D) + B * H * T * T + B * KV * (NpT * D + NpD * T) +
    B * H * (2 * up4(T) * T + 2 * NpD * T + up4(T) * NpT + 3 * up4(T) * NpD);
  floats = Math.max(floats, attn);
  const pages = Math.ceil((64 + floats * 4) / 65536);
  return Math.max(16, pages) * 65536;
}

export function formatBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}
