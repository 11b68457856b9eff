/** What the WebGPU backend (webgpu.ts, main thread) and its GPU worker (worker.ts) say to each other. */
import type { KernelName } from '../../ops/kernels';
import type { Caps } from '../../ops/wgsl';
import type { ComputeLimits, FeatureChoice } from './plan';

export interface AdapterDesc {
  name: string;
  vendor?: string;
  /** 'gpu' for hardware, 'cpu' for a software rasterizer (lavapipe, SwiftShader, WARP) */
  type: string;
  features: string[];
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  /** the adapter's subgroup sizes (0 where it does not say) */
  subgroupMinSize: number;
  subgroupMaxSize: number;
}
export interface GpuInfo {
  adapters: AdapterDesc[];
  chosen: AdapterDesc | null;
  /** the device's limits, features and kernel caps (absent from a probe) */
  limits?: { maxStorageBufferBindingSize: number; maxBufferSize: number } & ComputeLimits;
  features?: string[];
  caps?: Caps;
  error?: string;
}

/** what the worker is started with */
export interface WorkerStart {
  sab: SharedArrayBuffer;
  /** --device: a part of the adapter's name */
  want?: string;
  /** list the adapters without making a device */
  probe?: boolean;
  /** optional features to leave off */
  features?: FeatureChoice;
  /** compute limits to ask for below the adapter's (tests of the tile choice) */
  limits?: Partial<ComputeLimits>;
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
