/**
 * The WGSL kernels of the WebGPU backend, one per op of reference.ts (the CPU twin each is tested against).
 * Every kernel reads its sizes from a uniform `P` of 16 u32 (floats bit-cast); binding 0 is always `P`. Large
 * 1-D launches use a 2-D grid: element index = gid.x + gid.y · (groups in x · workgroup size).
 */
import { HEAD, RO, RW } from './wgsl';
import { ATTENTION_KERNELS } from './attention';


/** elementwise kernels: P = [n, s (f32)] */
const ew = (name: string, bindings: string, body: string) => HEAD + bindings + /* wgsl */ `
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = flat(g, nw, 256u);
  if (i >= pu(0u)) { return; }
  let s = pf(1u);
  ${body}
}
// ${name}
`;

/**
 * The product's main loop, shared by matmul and qmatmul (each defines loadA, loadB, store, ldc, c0): 64×64 tiles
 * of C per workgroup of 16×16 invocations, each computing 4×4 outputs from 16-deep slices of A and B staged in
 * workgroup memory. Dispatch: [ceil(N/64), ceil(M/64), 1].
 */
const BLOCKED = /* wgsl */ `
var<workgroup> As: array<array<f32, 64>, 16>; // [k][row]
var<workgroup> Bs: array<array<f32, 64>, 16>; // [k][col]
@compute @workgroup_size(16, 16) fn main(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) w: vec3<u32>) {
  let M = pu(0u); let N = pu(1u); let K = pu(2u);
  let row0 = w.y * 64u; let col0 = w.x * 64u;
  let t = l.y * 16u + l.x;
  var acc: array<array<f32, 4>, 4>;
  for (var i = 0u; i < 4u; i = i + 1u) { for (var j = 0u; j < 4u; j = j + 1u) { acc[i][j] = 0.0; } }
  for (var k0 = 0u; k0 < K; k0 = k0 + 16u) {
    // 1024 values of each tile, 4 per invocation: element e = t + 256·q is (k = e / 64, m = e % 64)
    for (var q = 0u; q < 4u; q = q + 1u) {
      let e = t + 256u * q;
      let kk = e / 64u; let mm = e % 64u;
      As[kk][mm] = loadA(row0 + mm, k0 + kk);
      Bs[kk][mm] = loadB(k0 + kk, col0 + mm);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk = kk + 1u) {
      var a: array<f32, 4>; var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i = i + 1u) { a[i] = As[kk][l.y + 16u * i]; b[i] = Bs[kk][l.x + 16u * i]; }
      for (var i = 0u; i < 4u; i = i + 1u) { for (var j = 0u; j < 4u; j = j + 1u) { acc[i][j] = acc[i][j] + a[i] * b[j]; } }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i = i + 1u) {
    let r = row0 + l.y + 16u * i;
    if (r >= M) { continue; }
    for (var j = 0u; j < 4u; j = j + 1u) {
      let c = col0 + l.x + 16u * j;
      if (c < N) { store(r * ldc() + c0() + c, acc[i][j]); }
    }
  }
}
`;

/** one workgroup of 64 per row n of a (N, C) tensor (o = n·C): part[0] ends as Σ_c `term`, then `tail` runs */
const rowSum = (bindings: string, term: string, tail: string) => HEAD + bindings + /* wgsl */ `
var<workgroup> part: array<f32, 64>;
@compute @workgroup_size(64) fn main(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let n = wg.x + wg.y * nw.x;
  let C = pu(1u);
  if (n >= pu(0u)) { return; }
  let o = n * C;
  var acc = 0.0;
  for (var c = l.x; c < C; c = c + 64u) { acc = acc + ${term}; }
  part[l.x] = acc;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s = s >> 1u) { if (l.x < s) { part[l.x] = part[l.x] + part[l.x + s]; } workgroupBarrier(); }
  ${tail}
}`;

/** an element of a weight: f32, or a half (bf16/f16 per P[11]) out of a u32 pair */
const fetch = (name: string, half: boolean) =>
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

/**
 * C (M, N) = alpha·op(A)·op(B) + beta·C. P = [M, N, K, transA, transB, alpha, beta, ldc, c0, lda, a0, half]: C's
 * rows are ldc apart from column c0 (0: N and 0), A's (not transposed) lda apart from column a0 (0: K and 0), so a
 * weight split into row blocks multiplies into its slice of C, or reads its slice of A.
 */
function matmulKernel(half: boolean): string {
  return HEAD + RO(1, 'A') + RO(2, 'B', half ? 'u32' : 'f32') + RW(3, 'C') + fetch('B', half) + /* wgsl */ `
fn loadA(r: u32, k: u32) -> f32 {
  let M = pu(0u); let K = pu(2u);
  if (r >= M || k >= K) { return 0.0; }
  if (pu(3u) == 1u) { return A[k * M + r]; }
  let lda = select(pu(9u), K, pu(9u) == 0u);
  return A[r * lda + pu(10u) + k];
}
fn loadB(k: u32, c: u32) -> f32 {
  let N = pu(1u); let K = pu(2u);
  if (k >= K || c >= N) { return 0.0; }
  if (pu(4u) == 1u) { return fetch_B(c * K + k); }
  return fetch_B(k * N + c);
}
fn store(i: u32, acc: f32) {
  var prev = 0.0;
  if (pf(6u) != 0.0) { prev = pf(6u) * C[i]; }
  C[i] = pf(5u) * acc + prev;
}
fn ldc() -> u32 { return select(pu(7u), pu(1u), pu(7u) == 0u); }
fn c0() -> u32 { return pu(8u); }
` + BLOCKED;
}

function embeddingKernel(half: boolean): string {
  return HEAD + RO(1, 'tab', half ? 'u32' : 'f32') + RO(2, 'ids', 'i32') + RW(3, 'o') + fetch('tab', half) + /* wgsl */ `
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = flat(g, nw, 256u);
  let C = pu(1u);
  if (i >= pu(0u) * C) { return; }
  let id = u32(ids[i / C]);
  if (id < pu(2u) || id >= pu(3u)) { return; }
  o[i] = fetch_tab((id - pu(2u)) * C + i % C);
}`;
}

/** x · op(W) for a 4-bit W; `dq`: the block scales are double-quantized (decoded here) */
function qmatmulKernel(dq: boolean): string {
  const scales = dq ? RO(3, 'S', 'u32') + RO(6, 'NA') + RO(7, 'NM') : RO(3, 'S');
  const scale = dq
    ? /* wgsl */ `fn scale(b: u32) -> f32 { let c = (S[b >> 2u] >> ((b & 3u) * 8u)) & 255u; return NM[c] * NA[b >> 8u] + pf(8u); }`
    : /* wgsl */ `fn scale(b: u32) -> f32 { return S[b]; }`;
  return HEAD + RO(1, 'X') + RO(2, 'Q', 'u32') + scales + RO(4, 'T') + RW(5, 'C') + scale + /* wgsl */ `
fn deq(idx: u32) -> f32 {
  let byte = (Q[idx >> 3u] >> (((idx >> 1u) & 3u) * 8u)) & 255u;
  let code = select(byte >> 4u, byte & 15u, (idx & 1u) == 1u);
  return T[code] * scale(idx >> pu(7u));
}
fn loadA(r: u32, k: u32) -> f32 {
  if (r >= pu(0u) || k >= pu(2u)) { return 0.0; }
  return X[r * pu(2u) + k];
}
fn loadB(k: u32, c: u32) -> f32 {
  if (k >= pu(2u) || c >= pu(1u)) { return 0.0; }
  if (pu(3u) == 1u) { return deq(c * pu(6u) + k); }
  return deq(k * pu(6u) + c);
}
fn store(i: u32, acc: f32) {
  var prev = 0.0;
  if (pf(4u) != 0.0) { prev = C[i]; }
  C[i] = acc + prev;
}
fn ldc() -> u32 { return pu(1u); }
fn c0() -> u32 { return 0u; }
` + BLOCKED;
}

export const KERNELS: Record<string, string> = {
  add: ew('add', RO(1, 'a') + RO(2, 'b') + RW(3, 'o'), 'o[i] = a[i] + b[i];'),
  mul: ew('mul', RO(1, 'a') + RO(2, 'b') + RW(3, 'o'), 'o[i] = a[i] * b[i];'),
  axpy: ew('axpy', RW(1, 'a') + RO(2, 'b'), 'a[i] = a[i] + s * b[i];'),
  scale: ew('scale', RW(1, 'a'), 'a[i] = a[i] * s;'),
  /** y (N, M) += b (M) on every row; P = [n, M] */
  bias: HEAD + RW(1, 'y') + RO(2, 'b') + /* wgsl */ `
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = flat(g, nw, 256u);
  if (i >= pu(0u)) { return; }
  y[i] = y[i] + b[i % pu(1u)];
}`,
  swiglu: ew('swiglu', RO(1, 'gt') + RO(2, 'up') + RW(3, 'h'), 'let x = gt[i]; h[i] = x / (1.0 + exp(-x)) * up[i];'),
  swiglu_bwd: ew('swiglu_bwd', RO(1, 'dh') + RO(2, 'gt') + RO(3, 'up') + RW(4, 'dg') + RW(5, 'du'), `
  let x = gt[i]; let sg = 1.0 / (1.0 + exp(-x));
  du[i] = dh[i] * x * sg;
  dg[i] = dh[i] * up[i] * sg * (1.0 + x * (1.0 - sg));`),
  /** P = [n, lr·(1/bc1) (stepSize), beta1, beta2, eps, decay, sqrt(bc2)] */
  adamw: HEAD + RW(1, 'p') + RO(2, 'gr') + RW(3, 'm') + RW(4, 'v') + /* wgsl */ `
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = flat(g, nw, 256u);
  if (i >= pu(0u)) { return; }
  let b1 = pf(2u); let b2 = pf(3u);
  m[i] = b1 * m[i] + (1.0 - b1) * gr[i];
  v[i] = b2 * v[i] + (1.0 - b2) * gr[i] * gr[i];
  p[i] = p[i] * pf(5u) - pf(1u) * m[i] / (sqrt(v[i]) / pf(6u) + pf(4u));
}`,

  /**
   * C (M, N) = alpha·op(A)·op(B) + beta·C. P = [M, N, K, transA, transB, alpha, beta, ldc, c0, lda, a0]: C's rows
   * are ldc apart from column c0 (0: N and 0), A's (not transposed) lda apart from column a0 (0: K and 0), so a
   * weight split into row blocks multiplies into its slice of C, or reads its slice of A.
   */
  matmul: matmulKernel(false),
  /** the same with B a half-precision weight, two values a u32 (P[11]: 1 bf16, 2 f16), widened as it is loaded */
  matmul_half: matmulKernel(true),

  /**
   * C (M, N) = X (M, K) · op(W) (+ C when beta = 1) for a 4-bit W (R × Cw), dequantized while loading tiles:
   * value(idx) = table[code(idx)] · scale[idx >> bsl]. P = [M, N, K, trans, beta (f32), R, Cw, bsl]
   */
  qmatmul: qmatmulKernel(false),
  /**
   * The same with double-quantized scales decoded in the kernel: scale(b) = map[code8(b)] · nested[b >> 8] + offset
   * (P[8], f32), the codes one byte a block, four to a u32.
   */
  qmatmul_dq: qmatmulKernel(true),

  /** out (N, C) = table[ids] for the ids in rows [r0, r1) of a table held from row r0; P = [N, C, r0, r1] */
  embedding: embeddingKernel(false),
  /** the same from a half-precision table (P[11]: 1 bf16, 2 f16) */
  embedding_half: embeddingKernel(true),
  /** y = x·rstd·w, rstd = 1/sqrt(mean(x²) + eps). P = [N, C, eps] */
  rmsnorm: rowSum(RO(1, 'x') + RO(2, 'w') + RW(3, 'y') + RW(4, 'rs'), 'x[o + c] * x[o + c]', `
  let r = 1.0 / sqrt(part[0] / f32(C) + pf(2u));
  if (l.x == 0u) { rs[n] = r; }
  for (var c = l.x; c < C; c = c + 64u) { y[o + c] = (x[o + c] * r) * w[c]; }`),

  /** dx = dy·w·r − (r³·Σ dy·w·x / C)·x. P = [N, C] */
  rmsnorm_bwd: rowSum(RO(1, 'dy') + RO(2, 'x') + RO(3, 'w') + RO(4, 'rs') + RW(5, 'dx'), 'dy[o + c] * w[c] * x[o + c]', `
  let r = rs[n];
  let k = r * r * r * part[0] / f32(C);
  for (var c = l.x; c < C; c = c + 64u) { dx[o + c] = dy[o + c] * w[c] * r - k * x[o + c]; }`),

  /** rotate-half RoPE on x (N, heads, D); P = [N, heads, D, inverse] */
  rope: HEAD + RO(1, 'x') + RO(2, 'pos', 'i32') + RO(3, 'cs') + RO(4, 'sn') + RW(5, 'ob') + /* wgsl */ `
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let t = flat(g, nw, 256u);
  let H = pu(1u); let D = pu(2u); let h2 = D / 2u;
  if (t >= pu(0u) * H * h2) { return; }
  let i = t % h2; let nh = t / h2; let n = nh / H;
  let o = nh * D;
  let tb = u32(pos[n]) * h2 + i;
  let c = cs[tb];
  var s = sn[tb];
  if (pu(3u) == 1u) { s = -s; }
  let a = x[o + i]; let b = x[o + i + h2];
  ob[o + i] = a * c - b * s;
  ob[o + i + h2] = b * c + a * s;
}`,

  ...ATTENTION_KERNELS,

  /**
   * Cross-entropy, one workgroup per row: dlogits = (softmax − onehot)·gradScale and the row's loss (0 for an
   * ignored row). P = [N, V, gradScale]
   */
  cross_entropy: HEAD + RO(1, 'x') + RO(2, 'tg', 'i32') + RW(3, 'dx') + RW(4, 'rl') + /* wgsl */ `
var<workgroup> part: array<f32, 256>;
@compute @workgroup_size(256) fn main(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let n = wg.x + wg.y * nw.x;
  let V = pu(1u);
  if (n >= pu(0u)) { return; }
  let o = n * V;
  let t = tg[n];
  let on = t >= 0;
  var m = -3.0e38;
  for (var c = l.x; c < V; c = c + 256u) { m = max(m, x[o + c]); }
  part[l.x] = m;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s >> 1u) { if (l.x < s) { part[l.x] = max(part[l.x], part[l.x + s]); } workgroupBarrier(); }
  let mx = part[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var c = l.x; c < V; c = c + 256u) { sum = sum + exp(x[o + c] - mx); }
  part[l.x] = sum;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s >> 1u) { if (l.x < s) { part[l.x] = part[l.x] + part[l.x + s]; } workgroupBarrier(); }
  let tot = part[0];
  let k = select(0.0, pf(2u) / tot, on);
  for (var c = l.x; c < V; c = c + 256u) { dx[o + c] = exp(x[o + c] - mx) * k; }
  workgroupBarrier();
  if (l.x == 0u) {
    if (on) {
      dx[o + u32(t)] = dx[o + u32(t)] - pf(2u);
      rl[n] = mx + log(tot) - x[o + u32(t)];
    } else { rl[n] = 0.0; }
  }
}`,

  /** one workgroup sums (or sums the squares of, P[1] = 1) n values into out[0]. P = [n, square] */
  reduce: HEAD + RO(1, 'x') + RW(2, 'out') + /* wgsl */ `
var<workgroup> part: array<f32, 256>;
@compute @workgroup_size(256) fn main(@builtin(local_invocation_id) l: vec3<u32>) {
  var s = 0.0;
  for (var i = l.x; i < pu(0u); i = i + 256u) { let v = x[i]; s = s + select(v, v * v, pu(1u) == 1u); }
  part[l.x] = s;
  workgroupBarrier();
  for (var w = 128u; w > 0u; w = w >> 1u) { if (l.x < w) { part[l.x] = part[l.x] + part[l.x + w]; } workgroupBarrier(); }
  if (l.x == 0u) { out[0] = part[0]; }
}`,
};
