/** The bench's WebGPU section: matmul GFLOP/s and the reference step on each kernel path, when an adapter exists. */
import { WebGpuBackend } from '../engine/backend/webgpu/webgpu';
import { GPU_PATHS, describeCaps, gpuMatmulGflops } from '../bench-gpu';
import { W, lorakitStep } from '../bench-step';
import { estimateMemory, formatBytes } from '../engine/tasks/estimate';
import { defaultLoraConfig } from '../engine/formats/lora-config';
import { loadSpec } from '../engine/formats/config';
import { QuantConfig } from '../engine/core/qweight';
import { pct } from './pct';

/** the webgpu backend, when an adapter exists: matmul GFLOP/s and the reference step (f32 and NF4 + DQ), on both kernel paths */
export function webgpuRows(dir: string): string[] {
  const gpus: WebGpuBackend[] = [];
  try {
    for (const p of GPU_PATHS) gpus.push(new WebGpuBackend(p.opts));
  } catch (e) {
    WebGpuBackend.disposeAll();
    return [`No WebGPU adapter here (${(e as Error).message}).`];
  }
  const a = gpus[0].info.chosen!;
  const rows = [
    `Adapter: ${a.name} (${a.type === 'cpu' ? 'a software rasterizer running on the CPU: its speed says nothing about a GPU' : 'hardware'}); max storage binding ${formatBytes(a.maxStorageBufferBindingSize)}; features ${a.features.filter((f) => /f16|subgroup|timestamp/.test(f)).join(', ')}.`,
    '',
    ...GPU_PATHS.map((p, i) => `- ${p.label} kernels: ${describeCaps(gpus[i])}`),
    '',
    `| what | ${GPU_PATHS.map((p) => `webgpu, ${p.label}`).join(' | ')} | note |`,
    `|---|${GPU_PATHS.map(() => '---|').join('')}---|`,
  ];
  for (const [M, N, K] of [
    [256, 256, 256],
    [512, 768, 256],
  ]) {
    const gf = gpus.map((g) => gpuMatmulGflops(g, M, N, K));
    rows.push(
      `| matmul ${M}×${K} · (${N}×${K})ᵀ | ${gf.map((v) => `${v.toFixed(2)} GFLOP/s`).join(' | ')} | 64×64 tiles, 4×4 outputs per invocation |`,
    );
    console.log(`webgpu matmul ${M}x${N}x${K}: ${gf.map((v) => v.toFixed(2)).join(' / ')} GFLOP/s`);
  }
  WebGpuBackend.disposeAll();
  // on a software adapter the whole reference step would take minutes: a short one (seq 64, batch 1) stands in
  const small = a.type === 'cpu';
  const shape = small ? { seq: 64, batch: 1 } : { seq: W.seq, batch: W.batch };
  for (const [name, q] of [
    ['f32', null],
    ['NF4 + DQ', { type: 'nf4', blocksize: 64, doubleQuant: true }],
  ] as [string, QuantConfig | null][]) {
    // a fresh device for each: its peak is this run's
    const runs = GPU_PATHS.map((p) => lorakitStep(dir, q, new WebGpuBackend(p.opts), small ? 1 : 3, shape));
    const r = runs[0];
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
      `| ${small ? `short step (seq ${shape.seq} × batch ${shape.batch})` : 'reference step'}, ${name} base | ${runs.map((x) => `${x.tokensPerS.toFixed(0)} tok/s, ${x.stepMs.toFixed(0)} ms/step`).join(' | ')} | live GPU buffers at peak ${formatBytes(r.peak.total)}: ${tags}; workspace ${formatBytes(r.peak.workspace)} |`,
    );
    console.log(`webgpu step ${name}: ${runs.map((x) => x.tokensPerS.toFixed(0)).join(' / ')} tok/s`);
  }
  rows.push(
    '',
    "In parentheses: the estimator's error for that tag (it models the CPU backend; the GPU allocates the same weights, LoRA, optimizer and activations, and its own small workspace instead of the WebAssembly arena).",
  );
  return rows;
}
