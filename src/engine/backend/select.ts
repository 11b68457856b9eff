/** Choosing a backend: `auto` takes a hardware GPU when one exists, else the fastest CPU path, and says why. */
import * as fs from 'node:fs';
import { UserError } from '../core/errors';
import { Backend, BackendName, WorkspaceSizer } from '../core/backend';
import { cpuWorkspace } from './cpu/workspace';
import { webgpuWorkspace } from './webgpu/workspace';
import { CpuBackend } from './cpu/cpu';
import { WebGpuBackend } from './webgpu/webgpu';
import type { AdapterDesc, GpuInfo } from './webgpu/messages';

export type { BackendName } from '../core/backend';
export const BACKEND_NAMES: BackendName[] = ['auto', 'cpu', 'cpu-reference', 'webgpu'];

export function createBackend(name: BackendName = 'auto', device?: string): { be: Backend; reason: string } {
  switch (name) {
    case 'cpu':
      return { be: new CpuBackend(), reason: 'requested' };
    case 'cpu-reference':
      return { be: new CpuBackend({ wasm: false }), reason: 'requested (plain TypeScript reference ops; slow)' };
    case 'webgpu': {
      const be = new WebGpuBackend({ device });
      return {
        be,
        reason: `requested; adapter ${be.info.chosen!.name}${be.info.chosen!.type === 'cpu' ? ' (a software rasterizer on the CPU: expect it to be slower than --backend cpu)' : ''}`,
      };
    }
    case 'auto': {
      const c = autoChoice(device);
      if (!c.gpu) return { be: new CpuBackend(), reason: c.reason };
      try {
        return { be: new WebGpuBackend({ device }), reason: c.reason };
      } catch (e) {
        return {
          be: new CpuBackend(),
          reason: `the WebGPU adapter ${c.gpu.name} failed to start (${(e as Error).message}); using the CPU`,
        };
      }
    }
    default:
      throw new UserError(`unknown backend "${name}" (known: ${BACKEND_NAMES.join(', ')})`);
  }
}

/**
 * What `--backend auto` takes, and why: a hardware WebGPU adapter when there is one, else the CPU (a software
 * rasterizer is slower than lorakit's own WebAssembly kernels). `train`, `info --devices` and the sidecar all ask this.
 */
export function autoChoice(device?: string): { gpu: AdapterDesc | null; reason: string; info: GpuInfo } {
  const none: GpuInfo = { adapters: [], chosen: null };
  if (process.env.LORAKIT_NO_GPU) return { gpu: null, reason: 'LORAKIT_NO_GPU is set', info: none };
  if (!mayHaveGpu()) return { gpu: null, reason: 'no GPU device on this machine; WebAssembly SIMD on all cores', info: none };
  let info: GpuInfo;
  try {
    info = WebGpuBackend.probe(device);
  } catch (e) {
    info = { ...none, error: (e as Error).message };
  }
  if (info.chosen?.type === 'gpu') return { gpu: info.chosen, reason: `a hardware WebGPU adapter: ${info.chosen.name}`, info };
  const why = info.chosen
    ? `the only WebGPU adapter is ${info.chosen.name}, a software rasterizer`
    : `no WebGPU adapter${info.error ? ` (${info.error})` : ''}`;
  return { gpu: null, reason: `${why}; WebAssembly SIMD on all cores is the fastest path here`, info };
}

/** Every WebGPU adapter found (asking Dawn even where no GPU device shows), and what `auto` takes. */
export function probeDevices(device?: string): GpuInfo & { auto: { backend: 'webgpu' | 'cpu'; reason: string } } {
  const info = WebGpuBackend.probe(device);
  const c = autoChoice(device);
  return { ...info, auto: { backend: c.gpu ? 'webgpu' : 'cpu', reason: c.reason } };
}

/** Release every GPU device still open: call before the process exits (a live Dawn device can crash on the way out). */
export function releaseDevices(): void {
  WebGpuBackend.disposeAll();
}

/** the workspace hook of the backend a run asks for (auto: the CPU's, unless a GPU is then found) */
export function workspaceSizer(name: BackendName): WorkspaceSizer {
  return name === 'webgpu' ? webgpuWorkspace : cpuWorkspace;
}

/**
 * Is there possibly a hardware GPU? On Linux a GPU driver shows up as /dev/dri/renderD* or /dev/nvidia*; without
 * one, asking Dawn (which finds only a software rasterizer and prints warnings) is skipped. macOS and Windows
 * always may.
 */
export function mayHaveGpu(): boolean {
  if (process.platform !== 'linux') return true;
  try {
    if (fs.readdirSync('/dev/dri').some((d) => d.startsWith('renderD'))) return true;
  } catch {
    /* no /dev/dri */
  }
  return fs.existsSync('/dev/nvidia0') || fs.existsSync('/dev/dxg'); // NVIDIA's driver; WSL's GPU
}
