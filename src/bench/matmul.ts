/**
 * The bench's matmul section: the gemm by shape class (the skinny LoRA products, square projections, the MLP, the LM
 * head) of the two workloads, on one thread and on all, as GFLOP/s and as a fraction of this machine's WebAssembly
 * SIMD peak (peak.ts) times the threads. With a runtime that takes `{ fma }` (the relaxed-SIMD kernels), each row is
 * measured with the plain and with the FMA kernels; otherwise with the one module there is.
 */
import * as os from 'node:os';
import { WasmRuntime } from '../engine/ops/wasm';
import { gemm } from '../engine/ops/matmul/gemm';
import { relaxedSimd, simdPeak } from './peak';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Shape {
  cls: string;
  what: string;
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  /** B held as bf16 bits, widened while packing (the 0.5B model's weights) */
  bf16?: boolean;
}

// the reference workload: 1024 tokens (seq 256 × batch 4), hidden 256, r = 16; the 0.5B: 128 tokens, hidden 896
const SHAPES: Shape[] = [
  { cls: 'skinny LoRA', what: 'x·Aᵀ: 1024×256 · (16×256)ᵀ', M: 1024, N: 16, K: 256, transB: true },
  { cls: 'skinny LoRA', what: 'h·Bᵀ: 1024×16 · (256×16)ᵀ', M: 1024, N: 256, K: 16, transB: true },
  { cls: 'skinny LoRA', what: 'dB = dYᵀ·h: (1024×256)ᵀ · 1024×16', M: 256, N: 16, K: 1024, transA: true },
  { cls: 'skinny LoRA', what: 'dH = dY·B: 1024×256 · 256×16', M: 1024, N: 16, K: 256 },
  { cls: 'skinny LoRA', what: 'dA = dHᵀ·x: (1024×16)ᵀ · 1024×256', M: 16, N: 256, K: 1024, transA: true },
  { cls: 'skinny LoRA', what: 'dX = dH·A: 1024×16 · 16×256', M: 1024, N: 256, K: 16 },
  { cls: 'square projection', what: '1024×256 · (256×256)ᵀ', M: 1024, N: 256, K: 256, transB: true },
  { cls: 'square projection', what: '0.5B: 128×896 · (896×896)ᵀ', M: 128, N: 896, K: 896, transB: true },
  { cls: 'MLP', what: '0.5B: 128×896 · (4864×896)ᵀ', M: 128, N: 4864, K: 896, transB: true },
  { cls: 'LM head', what: '1024×256 · (8192×256)ᵀ', M: 1024, N: 8192, K: 256, transB: true },
  { cls: 'LM head', what: '0.5B: 128×896 · (151936×896)ᵀ, bf16 W', M: 128, N: 151936, K: 896, transB: true, bf16: true },
  { cls: 'large', what: '2048×2048 · 2048×2048', M: 2048, N: 2048, K: 2048 },
];

/** deterministic values in [0, 1), f32 or their bf16 bits: a loop, not a closure per element (the LM head's B has 136M) */
function fill(n: number, seed: number, bf16 = false): Float32Array | Uint16Array {
  const x = new Float32Array(1);
  const bits = new Uint32Array(x.buffer);
  const out = bf16 ? new Uint16Array(n) : new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[0] = s / 2 ** 32;
    out[i] = bf16 ? bits[0] >>> 16 : x[0];
  }
  return out;
}

/** each shape's operands, made once for every runtime that measures it */
const operands = new Map<Shape, { a: Float32Array; b: Float32Array | Uint16Array; c: Float32Array }>();
function operandsOf(s: Shape) {
  let o = operands.get(s);
  if (!o) {
    o = { a: fill(s.M * s.K, 1) as Float32Array, b: fill(s.N * s.K, 2, s.bf16), c: new Float32Array(s.M * s.N) };
    operands.set(s, o);
  }
  return o;
}

type RuntimeCtor = new (threads: number, opts?: { fma?: boolean }) => WasmRuntime;

/** the runtimes to measure on `threads`: plain, and FMA where the runtime takes the option and gives it */
function runtimes(threads: number): { simd: 'plain' | 'FMA'; rt: WasmRuntime }[] {
  const Rt = WasmRuntime as unknown as RuntimeCtor;
  const kind = (rt: WasmRuntime) => ((rt as unknown as { fma?: boolean }).fma === true ? 'FMA' : 'plain');
  const out: { simd: 'plain' | 'FMA'; rt: WasmRuntime }[] = [];
  for (const fma of [false, true]) {
    let rt: WasmRuntime;
    try {
      rt = new Rt(threads, { fma });
    } catch {
      continue; // no FMA here (no relaxed SIMD): the plain row stands alone
    }
    if (out.some((o) => o.simd === kind(rt))) rt.dispose();
    else out.push({ simd: kind(rt), rt });
  }
  return out;
}

/** GFLOP/s of one shape: the median of 5 calls (3 past 10 GFLOP), after one untimed */
function gflops(rt: WasmRuntime, s: Shape, a: Float32Array, b: Float32Array | Uint16Array, c: Float32Array): number {
  const flop = 2 * s.M * s.N * s.K;
  const reps = flop > 10e9 ? 3 : 5;
  const times: number[] = [];
  for (let r = 0; r <= reps; r++) {
    const t = performance.now();
    gemm(rt, { M: s.M, N: s.N, K: s.K, a, b, c, transA: s.transA, transB: s.transB });
    if (r > 0) times.push(performance.now() - t);
  }
  return flop / median(times) / 1e6;
}

export function matmulSection(): string {
  const all = os.availableParallelism();
  let mulAdd = simdPeak(false);
  let fma = relaxedSimd() ? simdPeak(true) : NaN;
  // res[shape][simd][threads]
  const res = SHAPES.map(() => new Map<string, number[]>());
  for (const threads of [1, all]) {
    for (const { simd, rt } of runtimes(threads)) {
      SHAPES.forEach((s, i) => {
        const { a, b, c } = operandsOf(s);
        const g = gflops(rt, s, a, b, c);
        const row = res[i].get(simd) ?? [];
        row.push(g);
        res[i].set(simd, row);
        console.log(`matmul ${s.cls}, ${s.what}, ${simd}, ${threads} thread${threads > 1 ? 's' : ''}: ${g.toFixed(1)} GFLOP/s`);
      });
      rt.dispose();
    }
  }
  operands.clear();
  // measured again after the gemms, the better of the two kept (other work on the machine lowers a peak, never raises it)
  mulAdd = Math.max(mulAdd, simdPeak(false));
  if (!Number.isNaN(fma)) fma = Math.max(fma, simdPeak(true));
  const peak = Number.isNaN(fma) ? mulAdd : Math.max(mulAdd, fma);
  console.log(
    `SIMD peak per core: mul + add ${mulAdd.toFixed(1)} GFLOP/s, relaxed_madd ${Number.isNaN(fma) ? 'not available' : fma.toFixed(1)}`,
  );
  const pct = (g: number, t: number) => `${((100 * g) / (t * peak)).toFixed(0)}%`;
  const rows: string[] = [];
  SHAPES.forEach((s, i) => {
    for (const [simd, [g1, gn]] of res[i])
      rows.push(
        `| ${s.cls} | ${s.what} | ${simd} | ${g1.toFixed(1)} | ${pct(g1, 1)} | ${gn === undefined ? '' : gn.toFixed(1)} | ${gn === undefined ? '' : pct(gn, all)} |`,
      );
  });
  const kernels = res[0].size > 1 ? 'plain and FMA (relaxed SIMD) kernels' : 'the plain SIMD kernels (this build has no FMA kernels)';
  return `## Matmul by shape class (fp32, GFLOP/s and fraction of the SIMD peak)

The gemm alone (\`gemm\`, as the backend calls it) on the products the two workloads make, with ${kernels}; the median of 5 calls (3 for the two past 10 GFLOP) after an untimed one. A and B are copied into WebAssembly memory on each call and the copy is in the time (in a model a weight lies there already and is only packed).

**Peak**: one core running ${process.arch === 'arm64' ? 24 : 14} independent f32x4 chains acc = acc·m + m (src/bench/peak.ts; the best call of 15, before and after the gemms): **${mulAdd.toFixed(1)} GFLOP/s** as f32x4.mul + f32x4.add, ${Number.isNaN(fma) ? 'relaxed SIMD not available to this Node' : `**${fma.toFixed(1)} GFLOP/s** as f32x4.relaxed_madd`}. The fractions below are of ${Number.isNaN(fma) ? 'the mul + add' : 'the faster'} loop times the threads (${all} for "all"). On AMD Zen 4/5 the two are about equal (two add pipes beside the two multiply-add ones); on Intel and Apple cores, where multiplies and most adds share the FMA pipes, the FMA loop gives up to twice the other, and plain kernels reach at most about half of it.

| class | product | kernels | 1 thread | of peak | ${all} threads | of ${all} × peak |
|---|---|---|---|---|---|---|
${rows.join('\n')}
`;
}
