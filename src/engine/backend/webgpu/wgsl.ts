/** What every WGSL kernel shares: the parameter uniform, its accessors, and binding declarations. */
export const HEAD = /* wgsl */ `
@group(0) @binding(0) var<uniform> P: array<vec4<u32>, 4>;
fn pu(i: u32) -> u32 { return P[i / 4u][i % 4u]; }
fn pf(i: u32) -> f32 { return bitcast<f32>(P[i / 4u][i % 4u]); }
fn flat(g: vec3<u32>, n: vec3<u32>, wg: u32) -> u32 { return g.x + g.y * n.x * wg; }
`;

export const RO = (b: number, n: string, t = 'f32') => `@group(0) @binding(${b}) var<storage, read> ${n}: array<${t}>;\n`;
export const RW = (b: number, n: string, t = 'f32') => `@group(0) @binding(${b}) var<storage, read_write> ${n}: array<${t}>;\n`;
