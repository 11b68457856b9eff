/**
 * `npm run bench`: the reference workload of DESIGN.md §8 (a ~10M-parameter Llama-shaped model, seq 256,
 * batch 4, LoRA r=16 on every linear layer) on each available backend, the matmul alone, and the same LoRA step
 * in PyTorch (bench/torch_step.py) with every python3 that has torch, side by side. Writes docs/BENCHMARKS.md.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { WasmRuntime } from './engine/ops/wasm';
import { gemm } from './engine/ops/matmul/gemm';
import { qgemm } from './engine/ops/qmatmul/qgemm';
import { CpuBackend } from './engine/backend/cpu/cpu';
import { estimateMemory, formatBytes } from './engine/tasks/estimate';
import { TinyModelOptions, makeTinyModel } from './engine/fixtures/model';
import { decodeSection } from './bench/decode';
import { LoraAdapter } from './engine/model/lora';
import { defaultLoraConfig } from './engine/formats/lora-config';
import { openModel } from './engine/tasks/session';
import { Rng } from './engine/core/rng';
import { Backend, MEM_TAGS, MemFigures } from './engine/core/backend';
import { WebGpuBackend } from './engine/backend/webgpu/webgpu';
import { VERSION } from './engine/core/version';
import { QuantConfig, bitsPerParam, quantizeWeight, scalesOf } from './engine/core/qweight';
import { NF4 } from './engine/core/blockwise';
import { loadSpec } from './engine/formats/config';

const root = path.resolve(__dirname, '..');
const W = { vocab: 8192, hidden: 256, ff: 768, layers: 8, heads: 8, kv: 4, seq: 256, batch: 4, rank: 16 };
const STEPS = Number(process.env.BENCH_STEPS ?? 7);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function matmulRows(): string[] {
  const rows: string[] = [];
  const shapes: [number, number, number, boolean][] = [
    [512, 1536, 576, true],
    [512, 576, 1536, true],
    [1024, 768, 256, true],
    [1024, 256, 768, false],
    [2048, 2048, 2048, false],
  ];
  for (const threads of [1, os.availableParallelism()]) {
    const g = new WasmRuntime(threads);
    for (const [M, N, K, tb] of shapes) {
      const a = Float32Array.from({ length: M * K }, (_, i) => ((i * 7) % 13) / 13);
      const b = Float32Array.from({ length: K * N }, (_, i) => ((i * 5) % 11) / 11);
      const c = new Float32Array(M * N);
      const times: number[] = [];
      for (let r = 0; r < 5; r++) {
        const t = performance.now();
        gemm(g, { M, N, K, a, b, c, transB: tb });
        times.push(performance.now() - t);
      }
      const gf = (2 * M * N * K) / median(times) / 1e6;
      rows.push(
        `| WebAssembly SIMD, ${threads} thread${threads > 1 ? 's' : ''} | ${M}×${K} · ${tb ? `(${N}×${K})ᵀ` : `${K}×${N}`} | ${gf.toFixed(1)} |`,
      );
      console.log(`matmul ${threads}t ${M}x${N}x${K}${tb ? ' (Bᵀ)' : ''}: ${gf.toFixed(1)} GFLOP/s`);
    }
    g.dispose();
  }
  return rows;
}

/** the fused 4-bit dequant-matmul against the f32 gemm on the same shapes (all threads) */
function qmatmulRows(): string[] {
  const rows: string[] = [];
  const g = new WasmRuntime(os.availableParallelism());
  const rng = new Rng(3);
  for (const [M, R, C] of [
    [1024, 768, 256],
    [1024, 256, 768],
    [512, 1536, 576],
    [1, 1536, 576],
  ] as [number, number, number][]) {
    const w = Float32Array.from({ length: R * C }, () => rng.normal() * 0.02);
    const q = quantizeWeight(w, [R, C], { type: 'nf4', blocksize: 64, doubleQuant: true }, 'float32');
    const qm = { packed: q.packed, scales: scalesOf(q), table: NF4, blocksize: 64, rows: R, cols: C };
    for (const trans of [true, false]) {
      const K = trans ? C : R,
        N = trans ? R : C;
      const x = Float32Array.from({ length: M * K }, () => rng.normal());
      const c = new Float32Array(M * N);
      const time = (f: () => void) => {
        const t: number[] = [];
        for (let r = 0; r < 7; r++) {
          const t0 = performance.now();
          f();
          t.push(performance.now() - t0);
        }
        return (2 * M * N * K) / median(t) / 1e6;
      };
      const gq = time(() => qgemm(g, { M, x, w: qm, trans, c }));
      const gf = time(() => gemm(g, { M, N, K, a: x, b: w, transB: trans, c }));
      const what = trans ? `x ${M}×${K} · Wᵀ (W ${R}×${C})` : `dY ${M}×${K} · W (W ${R}×${C})`;
      rows.push(`| ${what} | ${gq.toFixed(1)} | ${gf.toFixed(1)} | ${(gq / gf).toFixed(2)} |`);
      console.log(`qgemm ${what}: ${gq.toFixed(1)} GFLOP/s (f32 gemm ${gf.toFixed(1)})`);
    }
  }
  g.dispose();
  return rows;
}

/** the webgpu backend, when an adapter exists: matmul GFLOP/s and the reference step (f32 and NF4 + DQ) */
function webgpuRows(dir: string): string[] {
  let gpu: WebGpuBackend;
  try {
    gpu = new WebGpuBackend();
  } catch (e) {
    return [`No WebGPU adapter here (${(e as Error).message}).`];
  }
  const a = gpu.info.chosen!;
  const rows = [
    `Adapter: ${a.name} (${a.type === 'cpu' ? 'a software rasterizer running on the CPU: its speed says nothing about a GPU' : 'hardware'}); max storage binding ${formatBytes(a.maxStorageBufferBindingSize)}; features ${a.features.filter((f) => /f16|subgroup|timestamp/.test(f)).join(', ')}.`,
    '',
    '| what | webgpu | note |',
    '|---|---|---|',
  ];
  for (const [M, N, K] of [
    [256, 256, 256],
    [512, 768, 256],
  ]) {
    const x = gpu.upload(
      Float32Array.from({ length: M * K }, (_, i) => (i % 7) / 7),
      [M, K],
      'activations',
    );
    const w = gpu.upload(
      Float32Array.from({ length: N * K }, (_, i) => (i % 5) / 5),
      [N, K],
      'weights',
    );
    const times: number[] = [];
    for (let r = 0; r < 4; r++) {
      const t = performance.now();
      const y = gpu.linear(x, w);
      gpu.read(gpu.sumSquares(y));
      gpu.free(y);
      times.push(performance.now() - t);
    }
    const gf = (2 * M * N * K) / median(times) / 1e6;
    rows.push(`| matmul ${M}×${K} · (${N}×${K})ᵀ | ${gf.toFixed(2)} GFLOP/s | 64×64 tiles, 4×4 outputs per invocation |`);
    console.log(`webgpu matmul ${M}x${N}x${K}: ${gf.toFixed(2)} GFLOP/s`);
    gpu.free(x, w);
  }
  gpu.dispose();
  // on a software adapter the whole reference step would take minutes: a short one (seq 64, batch 1) stands in
  const small = a.type === 'cpu';
  const shape = small ? { seq: 64, batch: 1 } : { seq: W.seq, batch: W.batch };
  for (const [name, q] of [
    ['f32', null],
    ['NF4 + DQ', { type: 'nf4', blocksize: 64, doubleQuant: true }],
  ] as [string, QuantConfig | null][]) {
    const r = lorakitStep(dir, q, new WebGpuBackend(), small ? 1 : 3, shape); // a fresh device: its peak is this run's
    const e = estimateMemory({
      spec: loadSpec(dir),
      lora: defaultLoraConfig({ r: W.rank, dropout: 0 }),
      seqLen: shape.seq,
      batch: shape.batch,
      quant: q,
    });
    const tags = (['weights', 'lora', 'optimizer', 'activations'] as const)
      .map((t) => `${t} ${formatBytes(r.peak[t])} (${pct(e.bytes[t], r.peak[t])})`)
      .join(', ');
    rows.push(
      `| ${small ? `short step (seq ${shape.seq} × batch ${shape.batch})` : 'reference step'}, ${name} base | ${r.tokensPerS.toFixed(0)} tok/s, ${r.stepMs.toFixed(0)} ms/step | live GPU buffers at peak ${formatBytes(r.peak.total)}: ${tags}; workspace ${formatBytes(r.peak.workspace)} |`,
    );
    console.log(`webgpu step ${name}: ${r.tokensPerS.toFixed(0)} tok/s`);
  }
  rows.push(
    '',
    "In parentheses: the estimator's error for that tag (it models the CPU backend; the GPU allocates the same weights, LoRA, optimizer and activations, and its own small workspace instead of the WebAssembly arena).",
  );
  return rows;
}

interface Run {
  backend: string;
  tokensPerS: number;
  bestTokensPerS: number;
  stepMs: number;
  peak: MemFigures;
  rssPeak: number;
}

function lorakitStep(
  dir: string,
  quant: QuantConfig | null = null,
  gpu?: WebGpuBackend,
  steps = STEPS,
  shape = { seq: W.seq, batch: W.batch },
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
  const ids = Int32Array.from({ length: n }, () => Math.floor(rng.next() * W.vocab));
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

interface TorchRun {
  python: string;
  tokens_per_s: number;
  best_tokens_per_s: number;
  step_ms: number;
  torch: string;
  blas: string;
  threads: number;
}

function torchRuns(): TorchRun[] {
  const out: TorchRun[] = [];
  const seen = new Set<string>();
  for (const py of ['/usr/bin/python3', 'python3']) {
    const which = spawnSync(py, ['-c', 'import sys, torch; print(sys.executable, torch.__version__)'], { encoding: 'utf8' });
    if (which.status !== 0 || seen.has(which.stdout.trim())) continue;
    seen.add(which.stdout.trim());
    const args = [W.vocab, W.hidden, W.ff, W.layers, W.heads, W.kv, W.seq, W.batch, W.rank, STEPS, os.availableParallelism()].map(String);
    const r = spawnSync(py, [path.join(root, 'bench', 'torch_step.py'), ...args], { encoding: 'utf8' });
    if (r.status !== 0) {
      console.log(`PyTorch with ${py} failed: ${r.stderr.trim().split('\n').pop()}`);
      continue;
    }
    const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
    out.push({ python: which.stdout.trim().split(' ')[0], ...j });
    console.log(
      `PyTorch ${j.torch} (${j.blas}, ${j.threads} threads): ${j.tokens_per_s.toFixed(0)} tok/s, ${j.step_ms.toFixed(0)} ms/step`,
    );
  }
  return out;
}

function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${cpu}, ${os.availableParallelism()} cores, ${formatBytes(os.totalmem())} RAM, ${os.platform()} ${os.release()}, Node ${process.version}`;
}

const loadAtStart = os.loadavg();
const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(' / ');

function main() {
  const dir = path.join(os.tmpdir(), `lorakit-bench-${process.pid}`);
  const ref: TinyModelOptions = { modelType: 'llama', configVocab: W.vocab, vocab: 512, hidden: W.hidden, intermediate: W.ff };
  makeTinyModel(dir, Object.assign(ref, { layers: W.layers, heads: W.heads, kvHeads: W.kv, std: 0.02 }));
  if (process.env.BENCH_ONLY === 'decode') {
    console.log(decodeSection(dir, ref)); // the decode section alone, printed, not written
    return fs.rmSync(dir, { recursive: true, force: true });
  }
  const mm = matmulRows();
  const qmm = qmatmulRows();
  const spec = loadSpec(dir);
  const estOf = (quant: QuantConfig | null) =>
    estimateMemory({ spec, lora: defaultLoraConfig({ r: W.rank, dropout: 0 }), seqLen: W.seq, batch: W.batch, quant });
  const quants: [string, QuantConfig | null][] = [
    ['f32 (no quantization)', null],
    ['NF4, blocks of 64', { type: 'nf4', blocksize: 64, doubleQuant: false }],
    ['NF4 + double quant, blocks of 64', { type: 'nf4', blocksize: 64, doubleQuant: true }],
    ['FP4 + double quant, blocks of 64', { type: 'fp4', blocksize: 64, doubleQuant: true }],
  ];
  const qruns = quants.map(([name, q]) => {
    const r = lorakitStep(dir, q);
    const e = estOf(q);
    console.log(
      `lorakit ${r.backend}, ${name}: ${r.tokensPerS.toFixed(0)} tok/s, ${r.stepMs.toFixed(0)} ms/step, peak ${formatBytes(r.peak.total)} (estimate ${formatBytes(e.bytes.total)}), weights ${r.peak.weights} B (analytic ${e.bytes.weights} B)`,
    );
    return { name, q, run: r, est: e };
  });
  const run = qruns[0].run;
  const est = qruns[0].est;
  const decode = decodeSection(dir, ref);
  const gpuRows = webgpuRows(dir);
  const torch = torchRuns();
  fs.rmSync(dir, { recursive: true, force: true });

  const memRows = MEM_TAGS.map(
    (t) => `| ${t} | ${formatBytes(est.bytes[t])} | ${formatBytes(run.peak[t])} | ${pct(est.bytes[t], run.peak[t])} |`,
  );
  const md = `# Benchmarks

Generated by \`npm run bench\` (lorakit ${VERSION}) on ${new Date().toISOString().slice(0, 10)}.
Machine: ${machine()}.
Load average (1 / 5 / 15 min; other jobs share the cores): ${load(loadAtStart)} at the start, ${load(os.loadavg())} at the end.
These machines are noisy (±30% between runs); compare rows from one run.

## Reference workload (DESIGN.md §8)

Llama-shaped, ${(est.params.base / 1e6).toFixed(1)}M parameters (vocab ${W.vocab}, hidden ${W.hidden}, MLP ${W.ff}, ${W.layers} layers, ${W.heads} heads / ${W.kv} KV heads), f32 base, LoRA r=${W.rank} on all linear layers (${est.params.trainable.toLocaleString('en')} trainable), seq ${W.seq}, batch ${W.batch}: one optimizer step = forward + backward + AdamW. Median of ${STEPS} steps after 2 warm-up steps.

| engine | tokens/s (median) | step (median) | tokens/s (best step) | ratio to lorakit (median) |
|---|---|---|---|---|
| lorakit ${run.backend} | ${run.tokensPerS.toFixed(0)} | ${run.stepMs.toFixed(0)} ms | ${run.bestTokensPerS.toFixed(0)} | 1.00 |
${torch.map((t) => `| PyTorch ${t.torch} (${t.blas}, ${t.threads} threads; ${t.python}) | ${t.tokens_per_s.toFixed(0)} | ${t.step_ms.toFixed(0)} ms | ${t.best_tokens_per_s.toFixed(0)} | ${(t.tokens_per_s / run.tokensPerS).toFixed(2)} |`).join('\n') || '| PyTorch | not available (no python3 with torch) | | | |'}

The PyTorch peer (bench/torch_step.py) is the same model and step written directly in PyTorch, autograd included.
A ratio above 1 means PyTorch is faster.

## Memory: estimate before loading vs measured peak (tracker, by tag)

| tag | estimate | measured peak | estimate error |
|---|---|---|---|
${memRows.join('\n')}
| total | ${formatBytes(est.bytes.total)} | ${formatBytes(run.peak.total)} | ${pct(est.bytes.total, run.peak.total)} |

Process RSS peak during the run: ${formatBytes(run.rssPeak)}. The tracker counts the engine's tensors and the kernels' WebAssembly memory; RSS adds Node itself, the model file's read buffers and arrays freed but not yet collected.

## Matmul alone (fp32, GFLOP/s, median of 5)

| kernel | shape | GFLOP/s |
|---|---|---|
${mm.join('\n')}

## QLoRA: the same workload on a 4-bit base

The decoder's linear weights (${(qruns[1].est.params.quantized / 1e6).toFixed(2)}M of the ${(est.params.base / 1e6).toFixed(1)}M parameters) held as 4-bit codes and scales, dequantized inside the matmuls (forward x·Wᵀ and backward dY·W); embeddings, norms and lm_head stay f32. Same LoRA, same step.

| base weights | bits / quantized param | tokens/s (median) | step | weights held (measured = analytic) | peak total | estimate | estimate error |
|---|---|---|---|---|---|---|---|
${qruns.map(({ name, q, run: r, est: e }) => `| ${name} | ${q ? bitsPerParam(q).toFixed(3) : '32'} | ${r.tokensPerS.toFixed(0)} | ${r.stepMs.toFixed(0)} ms | ${formatBytes(r.peak.weights)} ${r.peak.weights === e.bytes.weights ? '=' : '≠'} ${formatBytes(e.bytes.weights)} | ${formatBytes(r.peak.total)} | ${formatBytes(e.bytes.total)} | ${pct(e.bytes.total, r.peak.total)} |`).join('\n')}

Peak by tag, measured (estimate error):

| base weights | ${MEM_TAGS.join(' | ')} |
|---|${MEM_TAGS.map(() => '---').join('|')}|
${qruns.map(({ name, run: r, est: e }) => `| ${name} | ${MEM_TAGS.map((t) => `${formatBytes(r.peak[t])} (${pct(e.bytes[t], r.peak[t])})`).join(' | ')} |`).join('\n')}

On this small model the embedding and LM head (8192 × 256 each, f32) dominate the weights, so 4 bits shrink the
total less than they would on a 7B model, where the linear layers hold almost all parameters.

## The fused 4-bit matmul alone (NF4 + DQ, all threads, GFLOP/s, median of 7)

Each thread dequantizes a few 8-column panels of op(W) into its own scratch (at most 256 KiB) and multiplies every
row of x by them; the f32 weights never exist whole. Compared with the f32 gemm on an f32 copy of the same W.

| product | fused 4-bit | f32 gemm | ratio |
|---|---|---|---|
${qmm.join('\n')}

${decode}
## WebGPU

${gpuRows.join('\n')}
`;
  fs.mkdirSync(path.join(root, 'docs'), { recursive: true });
  fs.writeFileSync(path.join(root, 'docs', 'BENCHMARKS.md'), md);
  console.log('\nwrote docs/BENCHMARKS.md');
}

function pct(est: number, got: number): string {
  if (got === 0) return est === 0 ? '0%' : 'n/a';
  const e = ((est - got) / got) * 100;
  return `${e >= 0 ? '+' : ''}${e.toFixed(1)}%`;
}

main();
