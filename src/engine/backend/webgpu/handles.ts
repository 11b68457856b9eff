/**
 * The main thread's side of the GPU worker besides the ops: tensor handles (ids of the worker's buffers), waiting
 * for an answer through a SharedArrayBuffer, launch grids, and the one line that explains Dawn's warnings.
 */
import type { MemTag, Tensor } from '../../core/backend';
import { UserError } from '../../core/errors';
import type { QuantWeight } from '../../core/qweight';
import { FLAG_BYTES, GpuInfo } from './messages';

export class GpuTensor implements Tensor {
  /** a weight larger than one binding allows is held as row blocks: `parts`, each [rows, cols] from row `r0` */
  parts?: { t: GpuTensor; r0: number }[];
  /** a frozen weight kept in its half precision (two values a u32), widened inside the kernels */
  half?: 'bf16' | 'f16';
  constructor(
    readonly shape: number[],
    readonly tag: MemTag,
    readonly id: number,
    readonly bytes: number,
    /** a 4-bit weight: codes (this buffer), scales (f32, or one byte a block when double-quantized), code table */
    readonly quant?: { q: QuantWeight; scales: GpuTensor; table: GpuTensor; nested?: { absmax: GpuTensor; map: GpuTensor } },
  ) {}
}

export const f32bits = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0];

/** block until the worker answers on `sab`; the payload, or the worker's error as a UserError */
export function answerOf(sab: SharedArrayBuffer, ms: number, what: string): Uint8Array {
  const head = new Int32Array(sab, 0, 2);
  const t0 = Date.now();
  while (Atomics.load(head, 0) === 0) {
    if (Date.now() - t0 > ms) throw new UserError(`the GPU did not answer while ${what} (${ms / 1000} s)`);
    Atomics.wait(head, 0, 0, 100);
  }
  const payload = new Uint8Array(sab, FLAG_BYTES, head[1]).slice();
  if (head[0] === 2) throw new UserError(new TextDecoder().decode(payload));
  return payload;
}

/** grid for `n` invocations of a `wg`-wide workgroup: 1-D up to 65535 groups, then 2-D */
export function grid(n: number, wg: number): [number, number, number] {
  const groups = Math.max(1, Math.ceil(n / wg));
  return groups <= 65535 ? [groups, 1, 1] : [65535, Math.ceil(groups / 65535), 1];
}

/**
 * Dawn prints two "Warning: max…BuffersPerPipelineLayout artificially reduced from 1000000 to 16" lines when it
 * enumerates a Vulkan driver that reports unbounded limits (Mesa's lavapipe/llvmpipe does). Dawn writes them from
 * native code straight to file descriptor 2: a worker's `stderr: true` stream never sees them (checked), so they
 * cannot be filtered from JavaScript. Say once per process, in one line, what they are.
 */
let explained = false;
export function explainDawnWarnings(info: GpuInfo): void {
  if (explained || !info.adapters.some((a) => /llvmpipe|lavapipe/i.test(a.name))) return;
  explained = true;
  process.stderr.write(
    'lorakit: the two "artificially reduced" warnings above come from Dawn (the WebGPU library) on the Mesa software Vulkan driver; they are harmless\n',
  );
}
