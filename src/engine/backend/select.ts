/** Choosing a backend: `auto` takes a hardware GPU when one exists, else the fastest CPU path, and says why. */
import { UserError } from '../errors';
import { Backend } from './backend';
import { CpuBackend } from './cpu/cpu';

export type BackendName = 'auto' | 'cpu' | 'cpu-reference' | 'webgpu';
export const BACKEND_NAMES: BackendName[] = ['auto', 'cpu', 'cpu-reference', 'webgpu'];

export function createBackend(name: BackendName = 'auto'): { be: Backend; reason: string } {
  switch (name) {
    case 'cpu':
      return { be: new CpuBackend(), reason: 'requested' };
    case 'cpu-reference':
      return { be: new CpuBackend({ wasm: false }), reason: 'requested (plain TypeScript reference ops; slow)' };
    case 'webgpu':
      throw new UserError('the webgpu backend is not available in this version yet; use --backend cpu');
    case 'auto':
      return { be: new CpuBackend(), reason: 'no WebGPU backend in this version; WebAssembly SIMD on all cores is the fastest path here' };
    default:
      throw new UserError(`unknown backend "${name}" (known: ${BACKEND_NAMES.join(', ')})`);
  }
}
