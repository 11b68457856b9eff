/**
 * The bench's decode section: single-token decode on the CPU backend (LlamaModel.step with a KV cache, batch 1)
 * against the memory-bandwidth roofline. A decode step reads every linear weight and the LM head once for one row
 * of x, so its ceiling is the rate at which the threads can stream those bytes: the roofline is the measured read
 * bandwidth divided by the bytes of weights a token reads (in their stored dtype, with the LoRA A and B).
 *
 * Models: a Qwen2.5-0.5B-shaped one (random weights, tied embeddings, bf16 safetensors) and the bench's 10.5M
 * reference model; bases f32, bf16 and NF4 + double quant (quantized on load), each without and with a rank-16
 * all-linear LoRA adapter whose B is not zero.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { COUNTER, WasmRuntime, sharedRuntime } from '../engine/ops/wasm';
import { CpuBackend, CpuTensor } from '../engine/backend/cpu/cpu';
import { Backend } from '../engine/core/backend';
import { LlamaModel } from '../engine/model/llama';
import { LoraAdapter } from '../engine/model/lora';
import { defaultLoraConfig } from '../engine/formats/lora-config';
import { openModel } from '../engine/tasks/session';
import { makeTinyModel, TinyModelOptions } from '../engine/fixtures/model';
import { QuantConfig } from '../engine/core/qweight';
import { Rng } from '../engine/core/rng';
import { LINEAR_NAMES } from '../engine/formats/structure';
import { firstToken } from './first-token';
import { QwenModels } from './qwen05';

/** decode steps timed (after WARM untimed ones), prompt length, LoRA rank */
const STEPS = Number(process.env.BENCH_DECODE_STEPS ?? 16);
const WARM = 3;
const PROMPT = 8;
const RANK = 16;
const NF4: QuantConfig = { type: 'nf4', blocksize: 64, doubleQuant: true };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * GB/s of all threads streaming a 512 MiB buffer (far past the caches) of WebAssembly memory with v128 loads,
 * work-stolen in 1 MiB chunks: how the decode kernels read their weights. Best of 7 (the first touches pages).
 */
export function readBandwidth(threads: number, bytes = 512 << 20): number {
  const rt = new WasmRuntime(threads);
  rt.arenaReset();
  const base = rt.alloc(bytes / 4);
  const out = rt.alloc(4 * threads);
  rt.mem().fill(1, base >> 2, (base + bytes) >> 2); // written, so every page is real (not the shared zero page)
  const times: number[] = [];
  for (let r = 0; r < 7; r++) {
    const t = performance.now();
    rt.dispatch('read_steal', threads, [base, bytes, 1 << 20, COUNTER, out]);
    times.push(performance.now() - t);
  }
  rt.dispose();
  return bytes / Math.min(...times) / 1e6;
}

/** bytes a decode step reads from weights: every decoder linear and the LM head as held, LoRA A and B in f32 */
function weightBytes(model: LlamaModel): number {
  let b = (model.w.lmHead as CpuTensor).bytes;
  for (const l of model.w.layers) for (const n of LINEAR_NAMES) b += (l.lin[n].w as CpuTensor).bytes;
  for (const m of model.adapter?.modules.values() ?? []) b += 4 * (m.A.shape[0] * m.A.shape[1] + m.B.shape[0] * m.B.shape[1]);
  return b;
}

/** op classes of the per-token profile, in table order */
export const OP_CLASSES = ['linear', 'LM head', 'LoRA', 'attention', 'KV cache', 'other ops', 'model code'] as const;
type OpClass = (typeof OP_CLASSES)[number];

/** the backend with every call timed into `acc` by op class (the LM head told apart by its weight) */
function profiled(be: Backend, lmHead: unknown, acc: Record<OpClass, number>): Backend {
  const cls = (name: string, args: unknown[]): OpClass => {
    if (name === 'linear') return args[1] === lmHead ? 'LM head' : 'linear';
    if (name === 'matmul' || name === 'dropout') return 'LoRA';
    if (name === 'attention') return 'attention';
    if (name === 'setRows' || name === 'zeros') return 'KV cache';
    return 'other ops';
  };
  return new Proxy(be, {
    get(t, p, r) {
      const v = Reflect.get(t, p, r);
      if (typeof v !== 'function' || typeof p !== 'string') return v;
      return (...args: unknown[]) => {
        const t0 = performance.now();
        const out = v.apply(t, args);
        acc[cls(p, args)] += performance.now() - t0;
        return out;
      };
    },
  });
}

export interface DecodeRun {
  tokPerS: number;
  /** from the fastest step: what the machine gives when nothing else runs */
  bestTokPerS: number;
  bytesPerTok: number;
  /** ms per token by op class */
  ops: Record<OpClass, number>;
}

const argmax = (x: Float32Array) => {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
};

/** greedy decode after a short prompt: the median step time over STEPS, then a profiled pass of 4 steps */
export function decodeRun(dir: string, quant: QuantConfig | null, lora: boolean): DecodeRun {
  const be = new CpuBackend(); // the shared runtime: the weights of one run are freed before the next loads
  const { model } = openModel(dir, be, undefined, quant);
  if (lora) {
    const rng = new Rng(5);
    model.adapter = LoraAdapter.create(model.spec, defaultLoraConfig({ r: RANK, alpha: 2 * RANK, dropout: 0 }), be, rng);
    for (const m of model.adapter.modules.values())
      be.write(
        m.B,
        Float32Array.from({ length: m.B.shape[0] * RANK }, () => 0.01 * rng.normal()),
      );
  }
  const V = model.spec.vocabSize;
  const cache = model.newCache();
  const tick = (ids: Int32Array) => {
    const l = model.step(ids, cache);
    const next = argmax(model.be.read(l));
    model.be.free(l);
    return next;
  };
  let next = tick(Int32Array.from({ length: PROMPT }, (_, i) => (i * 7919 + 11) % V));
  const times: number[] = [];
  for (let s = 0; s < WARM + STEPS; s++) {
    const t = performance.now();
    next = tick(Int32Array.of(next));
    if (s >= WARM) times.push(performance.now() - t);
  }
  const ops = Object.fromEntries(OP_CLASSES.map((c) => [c, 0])) as Record<OpClass, number>;
  const m = model as unknown as { be: Backend };
  m.be = profiled(be, model.w.lmHead, ops);
  const P = 4;
  const t0 = performance.now();
  for (let s = 0; s < P; s++) next = tick(Int32Array.of(next));
  const total = performance.now() - t0;
  m.be = be;
  let inOps = 0;
  for (const c of OP_CLASSES) inOps += ops[c];
  ops['model code'] = total - inOps;
  for (const c of OP_CLASSES) ops[c] /= P;
  const bytesPerTok = weightBytes(model);
  model.freeCache(cache);
  be.dispose();
  return { tokPerS: 1000 / median(times), bestTokPerS: 1000 / Math.min(...times), bytesPerTok, ops };
}

/**
 * The section's rows: `ref` is the reference model's folder (f32); its bf16 twin is made under a temporary folder
 * and removed after; the 0.5B folders come from `qwen` (made on first use, shared with the training-step section).
 */
export async function decodeSection(ref: string, refOpts: TinyModelOptions, qwen: QwenModels): Promise<string> {
  const threads = sharedRuntime().threads;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-decode-'));
  try {
    const refBf16 = path.join(tmp, 'ref-bf16');
    makeTinyModel(refBf16, { ...refOpts, dtype: 'BF16' });
    const q = { bf16: qwen.bf16(), f32: qwen.f32() };
    const bw = readBandwidth(threads);
    const bw1 = readBandwidth(1);
    console.log(`decode: read bandwidth ${bw.toFixed(1)} GB/s on ${threads} threads, ${bw1.toFixed(1)} GB/s on 1`);
    const rows: string[] = [];
    const prof: string[] = [];
    const models: [string, string, string][] = [
      ['Qwen2.5-0.5B-shaped', q.f32, q.bf16],
      ['10.5M reference', ref, refBf16],
    ];
    for (const [mname, f32dir, bf16dir] of models)
      for (const [bname, dir, quant] of [
        ['f32', f32dir, null],
        ['bf16', bf16dir, null],
        ['NF4 + DQ', bf16dir, NF4],
      ] as [string, string, QuantConfig | null][])
        for (const lora of [false, true]) {
          const r = decodeRun(dir, quant, lora);
          const roof = (bw * 1e9) / r.bytesPerTok;
          const what = `${mname}, ${bname}${lora ? ` + LoRA r=${RANK}` : ''}`;
          console.log(
            `decode ${what}: ${r.tokPerS.toFixed(1)} tok/s, roofline ${roof.toFixed(1)} (${((100 * r.tokPerS) / roof).toFixed(0)}%)`,
          );
          const pct = (t: number) => `${((100 * t) / roof).toFixed(0)}%`;
          rows.push(
            `| ${what} | ${r.tokPerS.toFixed(1)} | ${(1000 / r.tokPerS).toFixed(1)} ms | ${r.bestTokPerS.toFixed(1)} | ${(r.bytesPerTok / 2 ** 20).toFixed(1)} MiB | ${roof.toFixed(1)} | ${pct(r.tokPerS)} (best step ${pct(r.bestTokPerS)}) |`,
          );
          prof.push(`| ${what} | ${OP_CLASSES.map((c) => r.ops[c].toFixed(2)).join(' | ')} |`);
        }
    const ttft: string[] = [];
    for (const [what, dir] of [
      ['Qwen2.5-0.5B-shaped, bf16', q.bf16],
      ['10.5M reference, f32', ref],
    ]) {
      const be = new CpuBackend();
      const t = await firstToken(dir, be);
      be.dispose();
      console.log(`first token, ${what}: cold ${t.coldMs.toFixed(0)} ms, cached ${t.cachedMs.toFixed(0)} ms (${t.cachedTokens} cached)`);
      ttft.push(
        `| ${what} | ${t.promptTokens} | ${t.coldMs.toFixed(0)} ms | ${t.cachedTokens} | ${t.cachedMs.toFixed(0)} ms | ${(t.coldMs / t.cachedMs).toFixed(0)}× |`,
      );
    }
    return `## Time to first token, cold and from the prefix cache

Through the generation session (\`GenerationSession.complete\`, greedy, one new token) on the CPU backend: a 512-token prompt (plus BOS where the tokenizer adds one) with no cache, then, after a prompt that shares its first 496 tokens, a prompt whose last 16 tokens differ (what an editor sends on the next keystroke). Median of 3 each.

| model, base | prompt tokens | cold | tokens from the cache | cached prefix | speed-up |
|---|---|---|---|---|---|
${ttft.join('\n')}

## Decode: one token at a time against the memory roofline

Greedy decoding through \`LlamaModel.step\` with a KV cache, batch 1, on the CPU backend (${threads} threads): a prompt of ${PROMPT} tokens, ${WARM} untimed steps, then the median of ${STEPS} single-token steps (logits read and argmaxed each step). Models: Qwen2.5-0.5B's shape (hidden 896, 24 layers, 14 heads / 2 KV heads, MLP 4864, vocab 151936, tied embeddings, q/k/v biases; the same model as the 0.5B training step) with random weights, and the 10.5M reference model above. NF4 + DQ is quantized on load (blocks of 64) from the bf16 folder; the embedding (the tied LM head) stays bf16. LoRA: rank ${RANK} on all linear layers, B not zero.

Roofline = read bandwidth ÷ weight bytes per token. The bandwidth is measured in this run: all ${threads} threads stream a 512 MiB buffer of WebAssembly memory with v128 loads, taking 1 MiB chunks from a shared counter (\`read_steal\`, the way the decode kernels stream weights), best of 7: **${bw.toFixed(1)} GB/s** (${bw1.toFixed(1)} GB/s on one thread). Weight bytes per token: every decoder linear and the LM head as held (f32, bf16, or 4-bit codes with their scales), plus LoRA A and B in f32.

| model, base | tokens/s (median) | ms/token | tokens/s (best step) | weights read/token | roofline tokens/s | of roofline |
|---|---|---|---|---|---|---|
${rows.join('\n')}

Before the resident weights and the decode kernels (commit 07733fc, this section run on the same machine at load 1–3, read bandwidth 53.8 GB/s), the Qwen2.5-0.5B shape decoded at 2.7 (f32), 4.6 (bf16) and 2.5 (NF4 + DQ) tokens/s: 10%, 8% and 2% of the roofline. Every call copied its weight into WebAssembly memory on one thread, the 4-bit gemv was scalar (about 1.2G weights/s) with its double-quantized scales decoded in TypeScript per call, and the KV cache was copied whole every token.

NF4 stays far from its roofline because it is bound by compute, not memory: the SIMD table lookup runs at about 6G weights/s a thread (about 85 instructions per 32 weights: eight \`i8x16.swizzle\`s, to which V8 adds a saturating add each, sixteen interleaves, and the f32 multiply-adds, with no FMA in WebAssembly SIMD), so the 358M 4-bit weights take 30–40 ms a token on two threads where streaming their 185 MB would take 3. The bf16 LM head (272 MB, the tied embedding) is 60% of NF4's bytes.

Time per token by op class (ms, 4 profiled steps; "model code" is the step's time outside backend calls):

| model, base | ${OP_CLASSES.join(' | ')} |
|---|${OP_CLASSES.map(() => '---').join('|')}|
${prof.join('\n')}
`;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
