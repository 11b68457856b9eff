/**
 * The memory estimate, from config.json alone, before anything is loaded: bytes per tag as the engine allocates
 * them (the workspace through the backend's own hook) (weights in f32, LoRA weights and gradients, AdamW moments, saved activations and the peak of
 * the loss computation), and whether the total fits in the machine's memory.
 */
import * as os from 'node:os';
import { KernelCall, MemFigures, StepWorkload, WorkspaceSizer } from '../core/backend';
import { ModelSpec } from '../formats/config';
import { LoraConfig, isTarget, rankFor } from '../formats/lora-config';
import { logitsRows } from '../model/llama';
import { QuantConfig, bitsPerParam, quantBytesFor } from '../core/qweight';
import { cpuWorkspace } from '../backend/cpu/workspace';
import { LINEAR_NAMES, modulePath, expectedTensors, linearShape, isQuantizable } from '../formats/structure';

export interface EstimateInput {
  spec: ModelSpec;
  lora: LoraConfig;
  seqLen: number;
  batch: number;
  gradCheckpoint?: boolean;
  /** QLoRA: the decoder's linear weights held in 4 bits */
  quant?: QuantConfig | null;
  /** memory to fit in; default: 90% of this machine's RAM */
  limitBytes?: number;
  /** the backend's workspace hook (default: the CPU's) */
  workspace?: WorkspaceSizer;
}

export interface Estimate {
  bytes: MemFigures;
  params: { base: number; trainable: number; quantized: number };
  /** stored bits per quantized parameter (codes and scales), when quantized */
  bitsPerParam?: number;
  device: { name: string; bytes: number };
  fits: boolean;
}

/**
 * held weights: the decoder's linear weights in 4 bits when quantized; other matrices in their half precision
 * when the checkpoint is bf16/f16; everything else in f32
 */
export function weightBytes(spec: ModelSpec, quant: QuantConfig | null = null): number {
  let n = 0;
  for (const [name, shape] of expectedTensors(spec)) {
    const count = shape.reduce((a, b) => a * b, 1);
    if (quant && isQuantizable(name)) n += quantBytesFor(count, quant);
    else n += count * (shape.length === 2 && bf16Weights(spec) ? 2 : 4);
  }
  return n;
}

export function quantizedParams(spec: ModelSpec): number {
  let n = 0;
  for (const [name, shape] of expectedTensors(spec)) if (isQuantizable(name)) n += shape.reduce((a, b) => a * b, 1);
  return n;
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
  const lse = e.batch * H * T; // attention keeps each row's log-sum-exp, not the probabilities
  // with checkpointing, the forward pass keeps each layer's input; one layer's activations are rebuilt at a time
  const saved = e.gradCheckpoint ? L * N * C + N * (perToken - C) + lse : L * (N * perToken + lse);
  const top = N * (2 * C + 1); // last hidden state and final norm
  // the LM head scores rows in chunks (llama.ts headLoss): the hidden-state gradient, then one chunk's logits,
  // their gradient and, when the batch is cut, the chunk's slice of hidden states
  const rows = logitsRows(N, V);
  const lossPeak = N * C + 2 * rows * V + (rows < N ? rows * C : 0);
  // without checkpointing the peak is at the loss, every layer's activations saved; with it, either at the loss
  // (layer inputs only) or in the last layer's backward pass (its rebuilt activations, dx and the SwiGLU gradients)
  const activationPeak = () =>
    e.gradCheckpoint ? Math.max(L * N * C + top + lossPeak, saved + N * C + N * (3 * FF + C)) : saved + top + lossPeak;
  const bytes = {
    weights: weightBytes(spec, e.quant),
    lora: 2 * trainable * f, // weights and gradients
    optimizer: 2 * trainable * f,
    activations: activationPeak() * f,
    workspace: 0,
    total: 0,
  };
  const rope = 2 * Math.max(64, 2 * T) * (D / 2) * f;
  const arena = (e.workspace ?? cpuWorkspace)(stepWorkload(spec, lora, e.batch, T, e.quant ?? null));
  bytes.workspace = rope + arena.all;
  // activations peak at the loss, when the kernel memory has reached its forward size; the backward pass may
  // grow that memory later, while the logits are gone
  const fixed = bytes.weights + bytes.lora + bytes.optimizer + rope;
  bytes.total = fixed + Math.max(bytes.activations + arena.forward, bytes.activations - lossPeak * f + arena.all);
  const device = e.limitBytes ? { name: 'the given limit', bytes: e.limitBytes } : { name: 'cpu (system memory)', bytes: os.totalmem() };
  return {
    bytes,
    params: { base: params, trainable, quantized: e.quant ? quantizedParams(spec) : 0 },
    ...(e.quant ? { bitsPerParam: bitsPerParam(e.quant) } : {}),
    device,
    fits: bytes.total <= (e.limitBytes ?? 0.9 * device.bytes),
  };
}

/** weight matrices stay in half precision when the checkpoint is bf16 or f16 (torch_dtype tells) */
const bf16Weights = (spec: ModelSpec) => /bfloat16|bf16|float16|f16|half/i.test(spec.torchDtype ?? '');

/** the kernel calls of one training step, by shape (what a backend's workspace hook sizes) */
export function stepWorkload(spec: ModelSpec, lora: LoraConfig, B: number, T: number, quant: QuantConfig | null = null): StepWorkload {
  const { hidden: C, intermediate: FF, heads: H, kvHeads: KV, headDim: D, vocabSize: V } = spec;
  const N = B * T;
  const rows = logitsRows(N, V); // the LM head's row chunks
  const halfB = bf16Weights(spec);
  const mm = (M: number, n: number, K: number, transA = false, half = false): KernelCall => ({
    op: 'matmul',
    M,
    N: n,
    K,
    transA,
    halfB: half,
  });
  const forward: KernelCall[] = [mm(rows, V, C, false, halfB), { op: 'crossEntropy', rows, V }, { op: 'swiglu', n: N * FF }];
  const backward: KernelCall[] = [mm(rows, C, V, false, halfB)];
  for (const name of LINEAR_NAMES) {
    const [out, inp] = linearShape(spec, name);
    const target = isTarget(lora, modulePath(0, name));
    const r = rankFor(lora, modulePath(0, name));
    if (quant) {
      const q = {
        op: 'qmatmul',
        M: N,
        rows: out,
        cols: inp,
        packedBytes: Math.ceil((out * inp) / 2),
        scales: Math.ceil((out * inp) / quant.blocksize),
      } as const;
      forward.push({ ...q, trans: true });
      backward.push({ ...q, trans: false });
      // a 4-bit W: the LoRA products run apart (core/lora-linear.ts)
      if (target) {
        forward.push(mm(N, r, inp), mm(N, out, r));
        backward.push(mm(out, r, N, true), mm(N, r, out), mm(r, inp, N, true), mm(N, inp, r));
      }
    } else if (target) {
      const call = { op: 'loraLinear', N, inp, out, r, halfW: halfB, dropout: lora.dropout > 0 } as const;
      forward.push(call);
      backward.push(call);
    } else {
      forward.push(mm(N, out, inp, false, halfB));
      backward.push(mm(N, inp, out, false, halfB));
    }
  }
  const shape = { B, Tq: T, Tk: T, H, KV, D };
  forward.push({ op: 'attention', shape });
  backward.push({ op: 'attention', shape });
  return { forward, backward };
}

export { formatBytes } from '../core/format';
