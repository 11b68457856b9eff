/** Choosing a backend: `auto` takes a hardware GPU when one exists, else the fastest CPU path, and says why. */
import * as fs from 'node:fs';
import { UserError } from '../errors';
import { Backend } from './backend';
import { CpuBackend } from './cpu/cpu';
import { GpuInfo, WebGpuBackend } from './webgpu/webgpu';

export type BackendName = 'auto' | 'cpu' | 'cpu-reference' | 'webgpu';
export const BACKEND_NAMES: BackendName[] = ['auto', 'cpu', 'cpu-reference', 'webgpu'];

export function createBackend(name: BackendName = 'auto', device?: string): { be: Backend; reason: string } {
  switch (name) {
    case 'cpu':
      return { be: new CpuBackend(), reason: 'requested' };
    case 'cpu-reference':
      return { be: new CpuBackend({ wasm: false }), reason: 'requested (plain TypeScript reference ops; slow)' };
    case 'webgpu': {
      const be = new WebGpuBackend({ device });
      return { be, reason: `requested; adapter ${be.info.chosen!.name}${be.info.chosen!.type === 'cpu' ? ' (a software rasterizer on the CPU: expect it to be slower than --backend cpu)' : ''}` };
    }
    case 'auto': {
      if (process.env.LORAKIT_NO_GPU) return { be: new CpuBackend(), reason: 'LORAKIT_NO_GPU is set' };
      if (!mayHaveGpu()) return { be: new CpuBackend(), reason: 'no GPU device on this machine; WebAssembly SIMD on all cores' };
      let info: GpuInfo;
      try {
        info = WebGpuBackend.probe(device);
      } catch (e) {
        info = { adapters: [], chosen: null, error: (e as Error).message };
      }
      if (info.chosen?.type === 'gpu') {
        try {
          return { be: new WebGpuBackend({ device }), reason: `a hardware WebGPU adapter: ${info.chosen.name}` };
        } catch (e) {
          return { be: new CpuBackend(), reason: `the WebGPU adapter ${info.chosen.name} failed to start (${(e as Error).message}); using the CPU` };
        }
      }
      const why = info.chosen ? `the only WebGPU adapter is ${info.chosen.name}, a software rasterizer` : `no WebGPU adapter${info.error ? ` (${info.error})` : ''}`;
      return { be: new CpuBackend(), reason: `${why}; WebAssembly SIMD on all cores is the fastest path here` };
    }
    default:
      throw new UserError(`unknown backend "${name}" (known: ${BACKEND_NAMES.join(', ')})`);
  }
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
