/**
 * The WebGPU backend's workspace hook: the short-lived buffers its ops make besides their outputs (webgpu.ts tags
 * them 'workspace'): token ids and positions, the targets and per-row losses of the cross-entropy, and the per-row
 * dot products of attention's backward pass. Each is freed by the op that made it, so the peak is the largest.
 */
import type { KernelCall, WorkspaceSizer } from '../../core/backend';

function callBytes(c: KernelCall, backward: boolean): number {
  switch (c.op) {
    case 'crossEntropy':
      return 4 * (2 * c.rows + 1); // targets, row losses, the summed loss
    case 'attention':
      return backward ? 4 * c.shape.B * c.shape.H * c.shape.Tq : 4 * c.shape.B * c.shape.Tq; // dots; positions
    default:
      return 0;
  }
}

export const webgpuWorkspace: WorkspaceSizer = (w) => {
  const fwd = Math.max(0, ...w.forward.map((c) => callBytes(c, false)));
  return { forward: fwd, all: Math.max(fwd, ...w.backward.map((c) => callBytes(c, true))) };
};
