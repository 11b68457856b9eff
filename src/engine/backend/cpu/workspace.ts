/**
 * The CPU backend's workspace hook: its WebAssembly memory, sized from a step's kernel calls. The memory holds the
 * largest set of operands one call copies in (see ops/matmul/gemm.ts, ops/qmatmul/qgemm.ts, ops/attention/attention.ts,
 * ops/swiglu and ops/cross_entropy for the layouts), in 64 KiB pages. It starts at 1 MiB and grows, never shrinks.
 */
import type { KernelCall, WorkspaceSizer } from '../../core/backend';
import { defaultThreads } from '../../ops/wasm';
import { gemmArenaFloats } from '../../ops/matmul/gemm';
import { loraArenaFloats, loraFused } from '../../ops/matmul/lora';
import { qgemmPlan } from '../../ops/qmatmul/qgemm';
import { attnScratchFloats, backwardOps, forwardOps, headsPerChunk } from '../../ops/attention/attention';
import { HeadPrograms } from '../../ops/attention/heads';
import { ELEMENTWISE_CHUNK } from '../../ops/rows';

const up8 = (n: number) => (n + 7) & ~7;
const pages = (floats: number) => Math.max(16, Math.ceil((64 + floats * 4) / 65536)) * 65536;

/** floats of WebAssembly memory one call holds; `backward`: attention's backward pass */
function callFloats(c: KernelCall, backward: boolean): number {
  switch (c.op) {
    case 'matmul':
      return gemmArenaFloats(c.M, c.N, c.K, c.transA, c.halfB);
    case 'loraLinear': {
      const s = { ...c, wKind: c.halfW ? 1 : 0 };
      if (loraFused(s, backward)) return loraArenaFloats(s, backward);
      // composed: the base product and the LoRA products one by one (core/lora-linear.ts)
      const { N, inp, out, r, halfW } = c;
      const calls = backward
        ? [gemmArenaFloats(N, inp, out, false, halfW), gemmArenaFloats(out, r, N, true), gemmArenaFloats(N, r, out, false)]
        : [gemmArenaFloats(N, out, inp, false, halfW), gemmArenaFloats(N, r, inp, false), gemmArenaFloats(N, out, r, false)];
      if (backward) calls.push(gemmArenaFloats(r, inp, N, true), gemmArenaFloats(N, inp, r, false));
      return Math.max(...calls);
    }
    case 'qmatmul':
      return qgemmPlan(c.M, c.rows, c.cols, c.trans, c.packedBytes, c.scales, defaultThreads()).floats;
    case 'swiglu':
      return 3 * Math.min(c.n, ELEMENTWISE_CHUNK);
    case 'crossEntropy':
      return c.rows * c.V + 7 * c.rows;
    case 'attention': {
      // inputs, per-(batch, kv head) packs, the outputs, then one chunk of heads' (kv groups') scratch and programs
      const { B, Tq: T, H, KV, D } = c.shape;
      const N = B * T;
      const NpT = up8(T),
        NpD = up8(D);
      const scratch = attnScratchFloats(c.shape);
      const slack = 16 * (B * KV * 3 + 12 * B * H); // alignment and end padding of each allocation
      if (!backward) {
        const heads = Math.min(B * H, headsPerChunk(scratch.forward));
        const table = HeadPrograms.floats(heads, heads * forwardOps(T));
        return N * (2 * H * D + 2 * KV * D) + B * KV * (NpT * D + NpD * T) + heads * scratch.forward + table + slack;
      }
      const groups = Math.min(B * KV, headsPerChunk(scratch.backward));
      const table = HeadPrograms.floats(groups, groups * backwardOps(T, T, H / KV));
      return N * (3 * H * D + 4 * KV * D) + B * H * T + B * KV * (2 * NpT * D + NpD * T) + groups * scratch.backward + table + slack;
    }
  }
}

export const cpuWorkspace: WorkspaceSizer = (w) => {
  const fwd = Math.max(0, ...w.forward.map((c) => callFloats(c, false)));
  const bwd = Math.max(0, ...w.backward.map((c) => callFloats(c, true)));
  return { forward: pages(fwd), all: pages(Math.max(fwd, bwd)) };
};
