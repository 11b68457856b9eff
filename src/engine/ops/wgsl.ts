/**
 * What every WGSL kernel shares: the parameter uniform `P` (16 u32, floats bit-cast) and its accessors, binding
 * declarations, the 1-D launch over a 2-D grid (element index = gid.x + gid.y · groups in x · workgroup size), the
 * elementwise template, and how a weight element is read (f32, or half precision two to a u32).
 */
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

/** an element of a weight: f32, or a half (bf16/f16 per P[11]) out of a u32 pair */
export const fetchWeight = (name: string, half: boolean) =>
  half
    ? /* wgsl */ `fn fetch_${name}(idx: u32) -> f32 {
  let w = ${name}[idx >> 1u];
  let h = select(w & 0xffffu, w >> 16u, (idx & 1u) == 1u);
  if (pu(11u) == 2u) { return unpack2x16float(h).x; }
  return bitcast<f32>(h << 16u);
}
`
    : `fn fetch_${name}(idx: u32) -> f32 { return ${name}[idx]; }
`;
