/**
 * `npm run bench`: the reference workload of DESIGN.md §8 (a ~10M-parameter Llama-shaped model, seq 256,
 * batch 4, LoRA r=16 on every linear layer) on each available backend, the matmul alone, and the same LoRA step
 * in PyTorch (bench/torch_step.py) with every python3 that has torch, side by side. Writes docs/BENCHMARKS.md.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { WasmGemm } from './engine/backend/cpu/gemm';
import { CpuBackend } from './engine/backend/cpu/cpu';
import { estimateMemory, formatBytes } from './engine/estimate';
import { makeTinyModel } from './engine/fixtures/model';
import { LoraAdapter } from './engine/lora/adapter';
import { defaultLoraConfig } from './engine/lora/config';
import { openModel } from './engine/session';
import { Rng } from './engine/util/rng';
import { MEM_TAGS, MemFigures } from './engine/backend/backend';
import { VERSION } from './engine/version';

const root = path.resolve(__dirname, '..');
const W = { vocab: 8192, hidden: 256, ff: 768, layers: 8, heads: 8, kv: 4, seq: 256, batch: 4, rank: 16 };
const STEPS = Number(process.env.BENCH_STEPS ?? 7);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function matmulRows(): string[] {
  const rows: string[] = [];
  const shapes: [number, number, number, boolean][] = [[512, 1536, 576, true], [512, 576, 1536, true], [1024, 768, 256, true], [1024, 256, 768, false], [2048, 2048, 2048, false]];
  for (const threads of [1, os.availableParallelism()]) {
    const g = new WasmGemm(threads);
    for (const [M, N, K, tb] of shapes) {
      const a = Float32Array.from({ length: M * K }, (_, i) => ((i * 7) % 13) / 13);
      const b = Float32Array.from({ length: K * N }, (_, i) => ((i * 5) % 11) / 11);
      const c = new Float32Array(M * N);
      const times: number[] = [];
      for (let r = 0; r < 5; r++) {
        const t = performance.now();
        g.gemm({ M, N, K, a, b, c, transB: tb });
        times.push(performance.now() - t);
      }
      const gf = (2 * M * N * K) / median(times) / 1e6;
      rows.push(`| WebAssembly SIMD, ${threads} thread${threads > 1 ? 's' : ''} | ${M}×${K} · ${tb ? `(${N}×${K})ᵀ` : `${K}×${N}`} | ${gf.toFixed(1)} |`);
      console.log(`matmul ${threads}t ${M}x${N}x${K}${tb ? ' (Bᵀ)' : ''}: ${gf.toFixed(1)} GFLOP/s`);
    }
    g.dispose();
  }
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

function lorakitStep(dir: string): Run {
  const be = new CpuBackend();
  const { model } = openModel(dir, be);
  model.adapter = LoraAdapter.create(model.spec, defaultLoraConfig({ r: W.rank, alpha: 2 * W.rank, dropout: 0 }), be, new Rng(0));
  model.adapter.allocGrads(be);
  const params = model.adapter.params();
  const m = params.map((p) => be.zeros([...p.t.shape], 'optimizer'));
  const v = params.map((p) => be.zeros([...p.t.shape], 'optimizer'));
  const rng = new Rng(1);
  const n = W.batch * W.seq;
  const ids = Int32Array.from({ length: n }, () => Math.floor(rng.next() * W.vocab));
  const targets = Int32Array.from({ length: n }, (_, i) => ids[(i + 1) % n]);
  const times: number[] = [];
  let rssPeak = 0;
  for (let s = 0; s < STEPS + 2; s++) {
    const t = performance.now();
    model.adapter.zeroGrads(be);
    const r = model.lossAndGrad(ids, targets, W.batch, W.seq, 1 / n, s);
    be.read(r.loss);
    be.free(r.loss);
    params.forEach((p, i) => be.adamw(p.t, p.g()!, m[i], v[i], { lr: 2e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: s + 1 }));
    if (s >= 2) times.push(performance.now() - t);
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  }
  const stepMs = median(times);
  return { backend: be.name, tokensPerS: (n * 1000) / stepMs, bestTokensPerS: (n * 1000) / Math.min(...times), stepMs, peak: { ...be.mem.peak }, rssPeak };
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
    console.log(`PyTorch ${j.torch} (${j.blas}, ${j.threads} threads): ${j.tokens_per_s.toFixed(0)} tok/s, ${j.step_ms.toFixed(0)} ms/step`);
  }
  return out;
}

function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${cpu}, ${os.availableParallelism()} cores, ${formatBytes(os.totalmem())} RAM, ${os.platform()} ${os.release()}, Node ${process.version}`;
}

function main() {
  const dir = path.join(os.tmpdir(), `lorakit-bench-${process.pid}`);
  makeTinyModel(dir, { modelType: 'llama', configVocab: W.vocab, vocab: 512, hidden: W.hidden, intermediate: W.ff, layers: W.layers, heads: W.heads, kvHeads: W.kv, std: 0.02 });
  const mm = matmulRows();
  const run = lorakitStep(dir);
  const { model } = openModel(dir, new CpuBackend({ wasm: false }));
  const est = estimateMemory({ spec: model.spec, lora: defaultLoraConfig({ r: W.rank, dropout: 0 }), seqLen: W.seq, batch: W.batch });
  console.log(`lorakit ${run.backend}: ${run.tokensPerS.toFixed(0)} tok/s, ${run.stepMs.toFixed(0)} ms/step, peak ${formatBytes(run.peak.total)} (estimate ${formatBytes(est.bytes.total)})`);
  const torch = torchRuns();
  fs.rmSync(dir, { recursive: true, force: true });

  const memRows = MEM_TAGS.map((t) => `| ${t} | ${formatBytes(est.bytes[t])} | ${formatBytes(run.peak[t])} | ${pct(est.bytes[t], run.peak[t])} |`);
  const md = `# Benchmarks

Generated by \`npm run bench\` (lorakit ${VERSION}) on ${new Date().toISOString().slice(0, 10)}.
Machine: ${machine()}.
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

## Not yet measured

- QLoRA (NF4) rows and the WebGPU backend: not in this version (see the QLoRA and GPU issues).
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
