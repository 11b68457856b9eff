/**
 * Attention for decoding on the CPU (decode.wat): batch 1 and a few query rows over a long K/V, each (row, head) a
 * work item: scores against the visible keys, the softmax of softmax.wat, the weighted sum of V. K and V are read in
 * place when resident (the KV cache is), so a token costs one pass over the cache, not a copy and a pack of it.
 * Same layouts and results (up to rounding) as attentionForwardWasm; reference.ts is the spec.
 */
import type { AttnShape } from '../../core/backend';
import { COUNTER, WasmRuntime } from '../wasm';

/** query rows up to which a batch-1 attention takes the decode kernel */
export const DECODE_MAX_ROWS = 4;

export const decodeApplies = (p: AttnShape) => p.B === 1 && p.Tq <= DECODE_MAX_ROWS && p.D % 4 === 0;

/** q (Tq, H·D); k, v (≥ Tk rows, KV·D): the first Tk rows are read → out (Tq, H·D), lse (H, Tq) */
export function attentionDecodeWasm(rt: WasmRuntime, q: Float32Array, k: Float32Array, v: Float32Array, p: AttnShape) {
  const { Tq, Tk, H, KV, D } = p;
  const items = Tq * H;
  const n = items * Tk * D * 2 < WasmRuntime.PARALLEL_MIN / 8 ? 1 : Math.min(rt.threads, items);
  rt.arenaReset();
  const kv = Tk * KV * D;
  const qo = rt.put(q),
    ko = rt.at(k.subarray(0, kv)),
    vo = rt.at(v.subarray(0, kv));
  const out = rt.alloc(items * D);
  const stats = rt.alloc(items * 4); // f64 (max·scale, Σ) per item
  const scratch = rt.alloc(n * (Tk + 4));
  const params = rt.alloc(16);
  const i32 = new Int32Array(rt.buffer(), params, 15);
  i32.set([qo, ko, vo, out, stats, scratch, Tq, Tk, H, KV, D, p.window ?? 0, 0, COUNTER, KV * D]);
  new Float32Array(rt.buffer(), params + 48, 1)[0] = 1 / Math.sqrt(D);
  rt.dispatch('attn_decode_steal', n, [params]);
  const f = rt.mem();
  const o = f.slice(out >> 2, (out >> 2) + items * D);
  const st = new Float64Array(rt.buffer(), stats, 2 * items);
  const lse = new Float32Array(H * Tq);
  for (let i = 0; i < Tq; i++) for (let h = 0; h < H; h++) lse[h * Tq + i] = st[2 * (i * H + h)] + Math.log(st[2 * (i * H + h) + 1]);
  return { out: o, lse };
}
