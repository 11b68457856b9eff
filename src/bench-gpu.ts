/**
 * The WebGPU half of the bench, shared by `npm run bench` (bench.ts) and the GPU check (gpu-check.ts): the two
 * kernel paths compared on one adapter, and the matmul's speed measured with several products between reads (a
 * read waits for the queue, which on a real GPU costs more than a small product).
 */
import { GpuOptions, WebGpuBackend } from './engine/backend/webgpu/webgpu';
import { DEFAULT_LIMITS } from './engine/backend/webgpu/plan';

/** the kernel paths: every feature the adapter offers with tiles from its limits, and the plain kernels at the default limits */
export const GPU_PATHS: { label: string; opts: GpuOptions }[] = [
  { label: 'features', opts: {} },
  { label: 'plain', opts: { features: { f16: false, subgroups: false }, limits: DEFAULT_LIMITS } },
];

/** what a device's kernels use, in a few words: "shader-f16, subgroups (8 lanes); matmul k-slices 64, …" */
export function describeCaps(g: WebGpuBackend): string {
  const c = g.caps;
  const feats = [c.f16 && 'shader-f16', c.subgroups && `subgroups (${c.sg} lanes)`].filter(Boolean).join(', ') || 'no optional features';
  return `${feats}; matmul k-slices ${c.mmBK}, attention key tiles ${c.attnKT}, per-key pass ${c.kvKB} keys × ${c.kvQT} queries, row reductions ${c.rowWg} wide`;
}

/** GFLOP/s of x (M×K) · Wᵀ (W N×K): `reps` products between two reads, the median of 3 after one warm-up */
export function gpuMatmulGflops(g: WebGpuBackend, M: number, N: number, K: number, reps = 4): number {
  const x = g.upload(
    Float32Array.from({ length: M * K }, (_, i) => (i % 7) / 7),
    [M, K],
    'activations',
  );
  const w = g.upload(
    Float32Array.from({ length: N * K }, (_, i) => (i % 5) / 5),
    [N, K],
    'weights',
  );
  const times: number[] = [];
  for (let r = 0; r < 4; r++) {
    const t = performance.now();
    for (let i = 0; i < reps; i++) {
      const y = g.linear(x, w);
      if (i === reps - 1) {
        const s = g.sumSquares(y);
        g.read(s); // waits for the queue
        g.free(s);
      }
      g.free(y);
    }
    if (r > 0) times.push(performance.now() - t);
  }
  g.free(x, w);
  times.sort((a, b) => a - b);
  return (2 * M * N * K * reps) / times[1] / 1e6;
}
