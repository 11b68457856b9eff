/**
 * What the WGSL kernels of one device use (ops/wgsl.ts `Caps`), chosen once from the adapter's features and limits
 * when the device is made, so a kernel's variant and its tile sizes are fixed at pipeline creation:
 * - `shader-f16`: f16 weights are bound as array<f16> and their matmul tiles kept in f16 (exact: the weight's own
 *   values; products and sums stay f32). bf16 weights keep the bit-shift widening, which is exact and free.
 * - `subgroups` (with WGSL's `subgroup_id` and `num_subgroups`, and a smallest subgroup of 4 to 128 lanes): the row reductions use
 *   subgroupAdd/subgroupMax, and attention's forward and per-query backward run one subgroup per query row.
 * - tile sizes from the compute limits: the workgroup memory a kernel may stage (maxComputeWorkgroupStorageSize)
 *   sets the matmul's k-slice depth and the attention tiles; the invocations a workgroup may have set the width of
 *   the row reductions and of the per-key attention pass. Register use is not a WebGPU limit, so the per-invocation
 *   work (the matmul's 4×4 outputs) stays fixed. Untuned: no GPU has run these yet.
 * Options turn features off or lower limits (tests force each path; gpu-check compares them on real hardware).
 */
import type { Caps } from '../../ops/wgsl';

/** the compute limits the plan reads (requested from the adapter at their maximum, or lower when asked) */
export const COMPUTE_LIMITS = [
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
] as const;
export type ComputeLimits = Record<(typeof COMPUTE_LIMITS)[number], number>;

/** WebGPU's default limits: what every adapter offers */
export const DEFAULT_LIMITS: ComputeLimits = {
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupSizeY: 256,
};

/** which optional features a backend may use (false: never, even where the adapter has it) */
export interface FeatureChoice {
  f16?: boolean;
  subgroups?: boolean;
}

/** the largest power of two ≤ n */
const pow2 = (n: number) => 2 ** Math.floor(Math.log2(Math.max(1, n)));

/** the kernels' caps for a device with these limits and features; `sg` is the adapter's smallest subgroup size */
export function planCaps(l: ComputeLimits, f: { f16: boolean; subgroups: boolean; sg: number }): Caps {
  const storage = l.maxComputeWorkgroupStorageSize;
  const width = Math.min(l.maxComputeInvocationsPerWorkgroup, l.maxComputeWorkgroupSizeX);
  const D = 128; // the tiled attention kernels' widest head
  return {
    f16: f.f16,
    subgroups: f.subgroups && f.sg >= 4 && f.sg <= 128,
    sg: f.sg,
    rowWg: pow2(Math.min(256, width)),
    // A and B slices of 64 rows: bk·64·(4 + 4) bytes; deeper slices, fewer barriers (32 at the default limit)
    mmBK: Math.min(64, pow2(storage / (64 * 8))),
    // K and V tiles of a 128-wide head: kt·128·4·2 bytes
    attnKT: Math.min(32, Math.floor(storage / (D * 8))),
    kvKB: pow2(Math.min(64, width)),
    // q and dout tiles, lse and dots: qt·(128·4·2 + 8) bytes
    kvQT: Math.min(32, Math.floor(storage / (D * 8 + 8))),
  };
}

/** the plain path at the default limits: no shader-f16, no subgroups */
export const PLAIN_CAPS = planCaps(DEFAULT_LIMITS, { f16: false, subgroups: false, sg: 1 });
