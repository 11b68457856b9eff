/** What the WebGPU backend (webgpu.ts, main thread) and its GPU worker (worker.ts) say to each other. */
import type { KernelName } from '../../ops/kernels';

export interface AdapterDesc {
  name: string;
  vendor?: string;
  /** 'gpu' for hardware, 'cpu' for a software rasterizer (lavapipe, SwiftShader, WARP) */
  type: string;
  features: string[];
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}
export interface GpuInfo {
  adapters: AdapterDesc[];
  chosen: AdapterDesc | null;
  limits?: { maxStorageBufferBindingSize: number; maxBufferSize: number };
  error?: string;
}

/** the ops the main thread posts, in order; those with a `sab` are answered through it */
export type ToGpu =
  | { op: 'alloc'; id: number; bytes: number; data?: ArrayBufferView }
  | { op: 'free'; id: number }
  | { op: 'write'; id: number; data: ArrayBufferView; offset?: number }
  | { op: 'copy'; src: number; srcOff: number; dst: number; dstOff: number; bytes: number }
  | { op: 'run'; kernel: KernelName; params: number[]; bufs: number[]; grid: [number, number, number] }
  | { op: 'read'; id: number; bytes: number; sab: SharedArrayBuffer }
  | { op: 'destroy'; sab: SharedArrayBuffer }
  | { op: 'lose' };

/** an answer's header in its SharedArrayBuffer: [state i32: 0 waiting, 1 ok, 2 error][length i32], then the bytes */
export const FLAG_BYTES = 8;
