/**
 * Every WGSL kernel, by name: each op folder exports its own, and the WebGPU backend runs them by a `KernelName`,
 * so a misspelt name is a compile error. A kernel is its WGSL, or a function of the device's `Caps` (features and
 * tile sizes) that writes it when the device makes its pipeline.
 */
import type { Caps } from './wgsl';
import { ADAMW_KERNELS } from './adamw/adamw.wgsl';
import { ATTENTION_KERNELS } from './attention/attention.wgsl';
import { ATTENTION_BWD_KERNELS } from './attention/attention_bwd.wgsl';
import { CROSS_ENTROPY_KERNELS } from './cross_entropy/cross_entropy.wgsl';
import { DROPOUT_KERNELS } from './dropout/dropout.wgsl';
import { ELEMENTWISE_KERNELS } from './elementwise/elementwise.wgsl';
import { EMBEDDING_KERNELS } from './embedding/embedding.wgsl';
import { MATMUL_KERNELS } from './matmul/matmul.wgsl';
import { QMATMUL_KERNELS } from './qmatmul/qmatmul.wgsl';
import { RMSNORM_KERNELS } from './rmsnorm/rmsnorm.wgsl';
import { ROPE_KERNELS } from './rope/rope.wgsl';
import { SWIGLU_KERNELS } from './swiglu/swiglu.wgsl';

export const KERNELS = {
  ...ELEMENTWISE_KERNELS,
  ...MATMUL_KERNELS,
  ...QMATMUL_KERNELS,
  ...EMBEDDING_KERNELS,
  ...RMSNORM_KERNELS,
  ...ROPE_KERNELS,
  ...SWIGLU_KERNELS,
  ...ATTENTION_KERNELS,
  ...ATTENTION_BWD_KERNELS,
  ...CROSS_ENTROPY_KERNELS,
  ...ADAMW_KERNELS,
  ...DROPOUT_KERNELS,
} satisfies Record<string, string | ((c: Caps) => string)>;

export type KernelName = keyof typeof KERNELS;

/** a kernel's WGSL for a device with these caps */
export function kernelSource(name: KernelName, caps: Caps): string {
  const k: string | ((c: Caps) => string) = KERNELS[name];
  return typeof k === 'string' ? k : k(caps);
}
