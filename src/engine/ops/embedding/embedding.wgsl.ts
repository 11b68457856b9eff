/** Embedding rows in WGSL: f32, half-precision or (shader-f16) native f16 tables, held whole or as row blocks. */
import { Caps, HEAD, RO, RW, enables, fetchWeight } from '../wgsl';

const embeddingKernel = (tab: 'f32' | 'half' | 'f16') => (c: Caps) =>
  enables(c) +
  HEAD +
  RO(1, 'tab', { f32: 'f32', half: 'u32', f16: 'f16' }[tab]) +
  RO(2, 'ids', 'i32') +
  RW(3, 'o') +
  fetchWeight('tab', tab === 'half', tab === 'f16') +
  /* wgsl */ `
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = flat(g, nw, 256u);
  let C = pu(1u);
  if (i >= pu(0u) * C) { return; }
  let id = u32(ids[i / C]);
  if (id < pu(2u) || id >= pu(3u)) { return; }
  o[i] = fetch_tab((id - pu(2u)) * C + i % C);
}`;

export const EMBEDDING_KERNELS = {
  /** out (N, C) = table[ids] for the ids in rows [r0, r1) of a table held from row r0; P = [N, C, r0, r1] */
  embedding: embeddingKernel('f32'),
  /** the same from a half-precision table (P[11]: 1 bf16, 2 f16) */
  embedding_half: embeddingKernel('half'),
  /** the same from an f16 table read as array<f16> (shader-f16 only) */
  embedding_f16: embeddingKernel('f16'),
};
