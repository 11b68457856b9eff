/**
 * What every WGSL kernel shares: the parameter uniform `P` (16 u32, floats bit-cast) and its accessors, binding
 * declarations, the 1-D launch over a 2-D grid (element index = gid.x + gid.y · groups in x · workgroup size), the
 * elementwise template, how a weight element is read (f32, or half precision two to a u32), and the workgroup-wide
 * sum and max (subgroup operations where the device has them, a tree in workgroup memory where it does not).
 */

/**
 * What the kernels of one device may use, fixed when its pipelines are made (backend/webgpu/plan.ts chooses it from
 * the adapter's features and limits): each kernel that has variants reads it as its WGSL is generated.
 */
export interface Caps {
  /** `shader-f16`: f16 weights bound as array<f16> and staged as f16 in the matmul's workgroup memory */
  f16: boolean;
  /** `subgroups`: subgroupAdd/subgroupMax in the row reductions and in attention's softmax */
  subgroups: boolean;
  /** the adapter's smallest subgroup size: a workgroup of this many invocations is one subgroup */
  sg: number;
  /** invocations of a row-reduction workgroup (RMSNorm, cross-entropy, sums) */
  rowWg: number;
  /** depth of the k-slices of A and B that the matmul stages in workgroup memory */
  mmBK: number;
  /** keys per tile staged in workgroup memory by the tiled attention kernels (forward, per-query backward) */
  attnKT: number;
  /** the tiled per-key backward pass: keys per workgroup, and queries per tile staged in workgroup memory */
  kvKB: number;
  kvQT: number;
}

/** the module's `enable` lines for the features this device has (harmless where a kernel uses none of them) */
export const enables = (c: Caps) => (c.f16 ? 'enable f16;\n' : '') + (c.subgroups ? 'enable subgroups;\n' : '');

export const HEAD = /* wgsl */ `
@group(0) @binding(0) var<uniform> P: array<vec4<u32>, 4>;
fn pu(i: u32) -> u32 { return P[i / 4u][i % 4u]; }
fn pf(i: u32) -> f32 { return bitcast<f32>(P[i / 4u][i % 4u]); }
fn flat(g: vec3<u32>, n: vec3<u32>, wg: u32) -> u32 { return g.x + g.y * n.x * wg; }
`;

export const RO = (b: number, n: string, t = 'f32') => `@group(0) @binding(${b}) var<storage, read> ${n}: array<${t}>;\n`;
export const RW = (b: number, n: string, t = 'f32') => `@group(0) @binding(${b}) var<storage, read_write> ${n}: array<${t}>;\n`;

/** elementwise kernels: P = [n, s (f32)] */
export const ew = (name: string, bindings: string, body: string) =>
  HEAD +
  bindings +
  /* wgsl */ `
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = flat(g, nw, 256u);
  if (i >= pu(0u)) { return; }
  let s = pf(1u);
  ${body}
}
// ${name}
`;

/**
 * An element of a weight as f32: f32; a half (bf16/f16 per P[11]) out of a u32 pair; or (`native`, shader-f16) an
 * f16 element of an array<f16>, which `fetchh_<name>` returns unwidened for a tile kept in f16.
 */
export const fetchWeight = (name: string, half: boolean, native = false) =>
  native
    ? /* wgsl */ `fn fetchh_${name}(idx: u32) -> f16 { return ${name}[idx]; }
fn fetch_${name}(idx: u32) -> f32 { return f32(${name}[idx]); }
`
    : half
      ? /* wgsl */ `fn fetch_${name}(idx: u32) -> f32 {
  let w = ${name}[idx >> 1u];
  let h = select(w & 0xffffu, w >> 16u, (idx & 1u) == 1u);
  if (pu(11u) == 2u) { return unpack2x16float(h).x; }
  return bitcast<f32>(h << 16u);
}
`
      : `fn fetch_${name}(idx: u32) -> f32 { return ${name}[idx]; }
`;

/** the entry point's parameters that name an invocation for wg_sum/wg_max (LANES builds their struct from them) */
export const LANE_ARGS = (c: Caps) =>
  '@builtin(local_invocation_index) li: u32' +
  (c.subgroups ? ', @builtin(subgroup_invocation_id) sgi: u32, @builtin(subgroup_id) sid: u32, @builtin(num_subgroups) nsg: u32' : '');
export const LANES = (c: Caps) => (c.subgroups ? 'Lanes(li, sgi, sid, nsg)' : 'Lanes(li, 0u, 0u, 1u)');

/**
 * `wg_sum(x, lanes)` and `wg_max(x, lanes)`: the sum and the max of one f32 per invocation of a `wg`-wide workgroup,
 * returned to every invocation; call them where the whole workgroup is (uniform control flow). With subgroups, each
 * subgroup reduces in registers (subgroupAdd/subgroupMax) and one value per subgroup goes through workgroup memory;
 * without, a tree in workgroup memory. Either way the order of the additions differs from the CPU's (parity, not bits).
 */
export function wgReduce(c: Caps, wg: number): string {
  const struct = 'struct Lanes { li: u32, sgi: u32, sid: u32, nsg: u32 } // invocation; in its subgroup; subgroup; subgroups\n';
  const fn = (name: string, sgOp: string, op: (a: string, b: string) => string) =>
    c.subgroups
      ? /* wgsl */ `fn ${name}(x: f32, L: Lanes) -> f32 {
  let s = ${sgOp}(x);
  workgroupBarrier(); // the last call's readers are done with red
  if (L.sgi == 0u) { red[L.sid] = s; }
  workgroupBarrier();
  var t = red[0];
  for (var i = 1u; i < L.nsg; i = i + 1u) { t = ${op('t', 'red[i]')}; }
  return t;
}
`
      : /* wgsl */ `fn ${name}(x: f32, L: Lanes) -> f32 {
  workgroupBarrier(); // the last call's readers are done with red
  red[L.li] = x;
  workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s = s >> 1u) {
    if (L.li < s) { red[L.li] = ${op('red[L.li]', 'red[L.li + s]')}; }
    workgroupBarrier();
  }
  return red[0];
}
`;
  return (
    struct +
    `var<workgroup> red: array<f32, ${c.subgroups ? Math.ceil(wg / c.sg) : wg}>;\n` +
    fn('wg_sum', 'subgroupAdd', (a, b) => `${a} + ${b}`) +
    fn('wg_max', 'subgroupMax', (a, b) => `max(${a}, ${b})`)
  );
}
