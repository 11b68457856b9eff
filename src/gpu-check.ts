/**
 * `node dist/gpu-check.js [--parity TAP-FILE] [--out DIR]`: the WebGPU backend on this machine's adapter, as one
 * table: the parity suite's result (scripts/gpu-check.sh runs test/ops and passes its output), the bench's WebGPU
 * rows on both kernel paths (features: shader-f16, subgroups, tiles from the limits; plain: neither, default
 * limits), and the same LoRA step in PyTorch (bench/torch_step.py: PEFT, bf16 on CUDA where they are installed).
 * On a hardware adapter the workloads are the bench's reference one and a Qwen2.5-0.5B-shaped one; on a software
 * adapter (lavapipe), a short step stands in, since the reference one would take minutes there.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { WebGpuBackend } from './engine/backend/webgpu/webgpu';
import { QuantConfig } from './engine/core/qweight';
import { makeTinyModel } from './engine/fixtures/model';
import { formatBytes } from './engine/tasks/estimate';
import { GPU_PATHS, describeCaps, gpuMatmulGflops } from './bench-gpu';
import { W, lorakitStep } from './bench-step';

const root = path.resolve(__dirname, '..');
const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};

interface Workload {
  name: string;
  model: { vocab: number; hidden: number; ff: number; layers: number; heads: number; kv: number; dtype: 'F32' | 'BF16' };
  seq: number;
  batch: number;
  steps: number;
  quant: QuantConfig | null;
}

function workloads(hardware: boolean): Workload[] {
  const ref = { vocab: W.vocab, hidden: W.hidden, ff: W.ff, layers: W.layers, heads: W.heads, kv: W.kv, dtype: 'F32' as const };
  const nf4: QuantConfig = { type: 'nf4', blocksize: 64, doubleQuant: true };
  if (!hardware)
    return [
      { name: 'short step (reference model, seq 64 × 1), f32 base', model: ref, seq: 64, batch: 1, steps: 1, quant: null },
      { name: 'short step, NF4 + DQ base', model: ref, seq: 64, batch: 1, steps: 1, quant: nf4 },
    ];
  const qwen = { vocab: 151936, hidden: 896, ff: 4864, layers: 24, heads: 14, kv: 2, dtype: 'BF16' as const };
  return [
    { name: `reference step (10M, seq ${W.seq} × ${W.batch}), f32 base`, model: ref, seq: W.seq, batch: W.batch, steps: 5, quant: null },
    { name: 'reference step, NF4 + DQ base', model: ref, seq: W.seq, batch: W.batch, steps: 5, quant: nf4 },
    { name: 'Qwen2.5-0.5B-shaped (random weights), bf16 base, seq 512 × 4', model: qwen, seq: 512, batch: 4, steps: 3, quant: null },
  ];
}

interface TorchRun {
  tokens_per_s: number;
  torch: string;
  device: string;
  dtype: string;
  peft: string | null;
  sdpa: boolean;
}

/** the same step in PyTorch: CUDA + bf16 + PEFT where there, else the CPU in f32; null without torch */
function torchStep(w: Workload, cuda: boolean, py: string): TorchRun | string {
  const m = w.model;
  const args = [m.vocab, m.hidden, m.ff, m.layers, m.heads, m.kv, w.seq, w.batch, W.rank, w.steps, os.availableParallelism()].map(String);
  const flags = cuda ? ['--device', 'cuda', '--dtype', 'bf16', '--peft'] : ['--peft'];
  const r = spawnSync(py, [path.join(root, 'bench', 'torch_step.py'), ...args, ...flags], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) return `failed: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`;
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as TorchRun;
}

/** a python3 with torch, and whether it sees CUDA */
function findTorch(): { py: string; cuda: boolean } | null {
  for (const py of ['python3', '/usr/bin/python3']) {
    const r = spawnSync(py, ['-c', 'import torch; print(torch.cuda.is_available())'], { encoding: 'utf8' });
    if (r.status === 0) return { py, cuda: r.stdout.trim() === 'True' };
  }
  return null;
}

/** "N/M tests pass" from node --test's TAP output, with the failing tests' names */
function paritySummary(file: string | undefined): string {
  if (!file) return 'not run';
  if (!fs.existsSync(file)) return `no output (${file})`;
  const tap = fs.readFileSync(file, 'utf8');
  const count = (k: string) => new RegExp(`^# ${k} (\\d+)`, 'm').exec(tap)?.[1];
  const failed = [...tap.matchAll(/^not ok \d+ - (.*)$/gm)].map((m) => m[1]);
  const ok = tap.match(/^ok \d+ - /gm)?.length ?? 0;
  const line = count('tests') ? `${count('pass')}/${count('tests')} tests pass` : `incomplete (timed out?): ${ok} passed before it stopped`;
  return failed.length ? `${line}; FAILED: ${failed.join('; ')}` : line;
}

function main(): void {
  const out = arg('--out');
  const lines: string[] = [];
  const say = (s = '') => {
    lines.push(s);
    console.log(s);
  };
  const devices = GPU_PATHS.map((p) => new WebGpuBackend(p.opts)); // throws (a UserError naming why) without an adapter
  const a = devices[0].info.chosen!;
  const hardware = a.type === 'gpu';
  say(`# lorakit gpu-check, ${new Date().toISOString()}`);
  say(
    `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism()} cores, ${formatBytes(os.totalmem())}, Node ${process.version}`,
  );
  say(
    `Adapter: ${a.name} (${hardware ? 'hardware' : 'software, on the CPU'}); vendor ${a.vendor ?? '?'}; subgroups ${a.subgroupMinSize}–${a.subgroupMaxSize} lanes`,
  );
  say(`Device features: ${devices[0].info.features?.join(', ')}`);
  const l = devices[0].info.limits!;
  say(
    `Limits: workgroup storage ${l.maxComputeWorkgroupStorageSize} B, ${l.maxComputeInvocationsPerWorkgroup} invocations (x ≤ ${l.maxComputeWorkgroupSizeX}), storage binding ${formatBytes(l.maxStorageBufferBindingSize)}`,
  );
  GPU_PATHS.forEach((p, i) => say(`Kernels, ${p.label}: ${describeCaps(devices[i])}`));
  say();
  const t = findTorch();
  const head = `| check | ${GPU_PATHS.map((p) => `lorakit webgpu, ${p.label}`).join(' | ')} | PyTorch | PyTorch ÷ lorakit (features) |`;
  say(head);
  say(`|---|${GPU_PATHS.map(() => '---|').join('')}---|---|`);
  say(`| parity: test/ops on this adapter, both kernel paths | ${paritySummary(arg('--parity'))} | | | |`);
  const shapes = hardware
    ? [
        [512, 768, 256],
        [2048, 4864, 896],
        [4096, 4096, 4096],
      ]
    : [
        [256, 256, 256],
        [512, 768, 256],
      ];
  for (const [M, N, K] of shapes) {
    const gf = devices.map((g) => gpuMatmulGflops(g, M, N, K, hardware ? 16 : 2));
    say(`| matmul ${M}×${K} · (${N}×${K})ᵀ, f32 | ${gf.map((v) => `${v.toFixed(1)} GFLOP/s`).join(' | ')} | | |`);
  }
  WebGpuBackend.disposeAll();
  for (const w of workloads(hardware)) {
    const dir = path.join(os.tmpdir(), `lorakit-gpu-check-${process.pid}-${w.model.hidden}`);
    if (!fs.existsSync(dir))
      makeTinyModel(dir, {
        modelType: w.model.vocab > 100000 ? 'qwen2' : 'llama',
        configVocab: w.model.vocab,
        vocab: 512,
        hidden: w.model.hidden,
        intermediate: w.model.ff,
        layers: w.model.layers,
        heads: w.model.heads,
        kvHeads: w.model.kv,
        dtype: w.model.dtype,
        std: 0.02,
      });
    const runs = GPU_PATHS.map((p) => {
      try {
        return lorakitStep(dir, w.quant, new WebGpuBackend(p.opts), w.steps, { seq: w.seq, batch: w.batch, vocab: w.model.vocab });
      } catch (e) {
        return (e as Error).message.split('\n')[0];
      }
    });
    const cells = runs.map((r) =>
      typeof r === 'string' ? `failed: ${r}` : `${r.tokensPerS.toFixed(0)} tok/s (peak ${formatBytes(r.peak.total)})`,
    );
    let torchCell = w.quant ? '—' : t ? '' : 'no python3 with torch';
    let ratio = '';
    if (t && !w.quant) {
      const r = torchStep(w, t.cuda, t.py);
      if (typeof r === 'string') torchCell = r;
      else {
        torchCell = `${r.tokens_per_s.toFixed(0)} tok/s (torch ${r.torch}, ${r.dtype}, ${r.device}${r.peft ? `, PEFT ${r.peft}` : ', no PEFT'}${r.sdpa ? ', SDPA' : ''})`;
        if (typeof runs[0] !== 'string') ratio = (r.tokens_per_s / runs[0].tokensPerS).toFixed(2);
      }
    }
    say(`| ${w.name} | ${cells.join(' | ')} | ${torchCell} | ${ratio} |`);
  }
  say();
  say('tok/s: median step (forward + backward + AdamW) after 2 warm-up steps. A ratio above 1: PyTorch is faster.');
  if (out) fs.writeFileSync(path.join(out, 'gpu-check.md'), lines.join('\n') + '\n');
  for (const d of fs.readdirSync(os.tmpdir()))
    if (d.startsWith(`lorakit-gpu-check-${process.pid}-`)) fs.rmSync(path.join(os.tmpdir(), d), { recursive: true, force: true });
}

main();
