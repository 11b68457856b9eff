/**
 * Attention kernels (causal, grouped-query, sliding window, decode offsets): the forward pass with an online
 * softmax, flash-style tiles for head dims up to 128, one subgroup per query row where the device has subgroups,
 * and the pieces the backward kernels (attention_bwd.wgsl.ts) share. P = [B, Tq, Tk, H, KV, D, window (0: none), scale]
 */
import { Caps, HEAD, RO, RW, enables } from '../wgsl';

/** the widest head the tiled kernels stage in workgroup memory (wider heads use the per-row kernels, up to 256) */
export const TILED_D = 128;
/** query rows per workgroup of the tiled kernels (one invocation each) */
export const QBLOCK = 32;

/** q, k, v, out, lse: the forward kernels' bindings */
const FWD = RO(1, 'q') + RO(2, 'k') + RO(3, 'v') + RW(4, 'o') + RW(5, 'lse');

export const ATTENTION_KERNELS = {
  /**
   * Causal grouped-query attention, one invocation per query row (b, h, i), online softmax over the visible keys:
   * the T×T matrix never exists. Writes out and the row's log-sum-exp.
   */
  attention:
    HEAD +
    FWD +
    ATTN_COMMON() +
    /* wgsl */ `
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let r = flat(g, nw, 64u);
  if (r >= pu(0u) * pu(3u) * pu(1u)) { return; }
  let i = r % pu(1u);
  let Q = qrow(r / pu(1u), i);
  let D = pu(5u); let b = Q.b; let kh = Q.kh; let qo = Q.qo;
  var acc: array<f32, 256>;
  for (var d = 0u; d < D; d = d + 1u) { acc[d] = 0.0; }
  var m = -3.0e38; var l = 0.0;
  let lim = range(i);
  for (var j = lim.x; j < lim.y; j = j + 1u) {
    let ko = ((b * pu(2u) + j) * pu(4u) + kh) * D;
    var s = 0.0;
    for (var d = 0u; d < D; d = d + 1u) { s = s + q[qo + d] * k[ko + d]; }
    s = s * pf(7u);
    let mn = max(m, s);
    let corr = exp(m - mn); let e = exp(s - mn);
    l = l * corr + e;
    for (var d = 0u; d < D; d = d + 1u) { acc[d] = acc[d] * corr + e * v[ko + d]; }
    m = mn;
  }
  for (var d = 0u; d < D; d = d + 1u) { o[qo + d] = acc[d] / l; }
  lse[Q.row] = m + log(l);
}`,

  /**
   * The same attention, flash-style: a workgroup takes 32 query rows of one (b, h) and walks the keys they see in
   * tiles of attnKT (from the device's workgroup storage), staged in workgroup memory so each K and V row is read
   * once per tile instead of once per query. Head dim ≤ 128. Grid: one workgroup per (b, h, block of 32 queries).
   */
  attention_tiled: (c: Caps) =>
    HEAD +
    FWD +
    ATTN_COMMON() +
    ATTN_TILES(c.attnKT) +
    /* wgsl */ `
@compute @workgroup_size(${QBLOCK}) fn main(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let w = wg.x + wg.y * nw.x;
  if (w >= pu(0u) * pu(3u) * qblocks()) { return; }
  let qb = w % qblocks();
  let i = qb * ${QBLOCK}u + l.x;
  let live = i < pu(1u);
  let Q = qrow(w / qblocks(), min(i, pu(1u) - 1u)); // rows past Tq compute row Tq − 1 and write nothing
  let D = pu(5u); let qo = Q.qo;
  var qv: array<f32, ${TILED_D}>;
  var acc: array<f32, ${TILED_D}>;
  for (var d = 0u; d < D; d = d + 1u) { qv[d] = q[qo + d]; acc[d] = 0.0; }
  var m = -3.0e38; var lsum = 0.0;
  let mine = range(min(i, pu(1u) - 1u));
  let span = blockSpan(qb);
  for (var j0 = span.x; j0 < span.y; j0 = j0 + ${c.attnKT}u) {
    loadTile(Q.b, Q.kh, j0, l.x);
    workgroupBarrier();
    if (live) {
      for (var jj = 0u; jj < ${c.attnKT}u; jj = jj + 1u) {
        let j = j0 + jj;
        if (j < mine.x || j >= mine.y) { continue; }
        var s = 0.0;
        for (var d = 0u; d < D; d = d + 1u) { s = s + qv[d] * Ks[jj * D + d]; }
        s = s * pf(7u);
        let mn = max(m, s);
        let corr = exp(m - mn); let e = exp(s - mn);
        lsum = lsum * corr + e;
        for (var d = 0u; d < D; d = d + 1u) { acc[d] = acc[d] * corr + e * Vs[jj * D + d]; }
        m = mn;
      }
    }
    workgroupBarrier();
  }
  if (live) {
    for (var d = 0u; d < D; d = d + 1u) { o[qo + d] = acc[d] / lsum; }
    lse[Q.row] = m + log(lsum);
  }
}`,

  /**
   * The same attention with subgroups: one workgroup of one subgroup (the adapter's smallest size, S lanes) per
   * query row, head dim ≤ 256. The lanes take S keys at a time, one each (its score q·k); the tile's max and sum of
   * exponentials are subgroupMax/subgroupAdd, so the online softmax runs on all lanes; then each lane accumulates
   * P·V for the head dims d ≡ lane (mod S), reading V rows whole across the lanes.
   */
  attention_sg: (c: Caps) =>
    enables(c) +
    HEAD +
    FWD +
    ATTN_COMMON() +
    /* wgsl */ `
var<workgroup> qs: array<f32, 256>; // this row of q
var<workgroup> ps: array<f32, ${c.sg}>; // the tile's exp(s − m)
@compute @workgroup_size(${c.sg}) fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let r = wg.x + wg.y * nw.x;
  if (r >= pu(0u) * pu(3u) * pu(1u)) { return; }
  let i = r % pu(1u);
  let Q = qrow(r / pu(1u), i);
  let D = pu(5u);
  for (var d = li; d < D; d = d + ${c.sg}u) { qs[d] = q[Q.qo + d]; }
  workgroupBarrier();
  var acc: array<f32, ${Math.ceil(256 / c.sg)}>; // head dims li + S·t
  var m = -3.0e38; var l = 0.0;
  let lim = range(i);
  for (var j0 = lim.x; j0 < lim.y; j0 = j0 + ${c.sg}u) {
    let on = j0 + li < lim.y;
    var s = -3.0e38;
    if (on) {
      let ko = krow(Q.b, j0 + li, Q.kh);
      var dot = 0.0;
      for (var d = 0u; d < D; d = d + 1u) { dot = dot + qs[d] * k[ko + d]; }
      s = dot * pf(7u);
    }
    let mn = max(m, subgroupMax(s));
    let e = select(0.0, exp(s - mn), on);
    let corr = exp(m - mn);
    l = l * corr + subgroupAdd(e);
    m = mn;
    ps[li] = e;
    workgroupBarrier();
    let n = min(${c.sg}u, lim.y - j0);
    for (var t = 0u; li + ${c.sg}u * t < D; t = t + 1u) {
      var a = acc[t] * corr;
      for (var jj = 0u; jj < n; jj = jj + 1u) { a = a + ps[jj] * v[krow(Q.b, j0 + jj, Q.kh) + li + ${c.sg}u * t]; }
      acc[t] = a;
    }
    workgroupBarrier();
  }
  for (var t = 0u; li + ${c.sg}u * t < D; t = t + 1u) { o[Q.qo + li + ${c.sg}u * t] = acc[t] / l; }
  if (li == 0u) { lse[Q.row] = m + log(l); }
}`,
};

/**
 * The tiled kernels' pieces: a workgroup takes block qb of 32 query rows (of qblocks() per (b, h)); the keys any
 * of them sees; and K and V rows [j0, j0+kt) of kv head kh, staged in workgroup memory (zeros past Tk).
 */
export function ATTN_TILES(kt: number): string {
  return /* wgsl */ `
fn qblocks() -> u32 { return (pu(1u) + ${QBLOCK - 1}u) / ${QBLOCK}u; }
fn blockSpan(qb: u32) -> vec2<u32> { return vec2<u32>(range(qb * ${QBLOCK}u).x, range(min(qb * ${QBLOCK}u + ${QBLOCK - 1}u, pu(1u) - 1u)).y); }
var<workgroup> Ks: array<f32, ${kt * TILED_D}>;
var<workgroup> Vs: array<f32, ${kt * TILED_D}>;
fn loadTile(b: u32, kh: u32, j0: u32, t: u32) {
  let D = pu(5u); let Tk = pu(2u);
  for (var e = t; e < ${kt}u * D; e = e + ${QBLOCK}u) {
    let j = j0 + e / D;
    if (j < Tk) {
      let ko = krow(b, j, kh) + e % D;
      Ks[e] = k[ko]; Vs[e] = v[ko];
    } else { Ks[e] = 0.0; Vs[e] = 0.0; }
  }
}
`;
}

/** the visible key range of query i (causal, sliding window), the test for one key, and where rows start */
export function ATTN_COMMON(): string {
  return /* wgsl */ `
fn range(i: u32) -> vec2<u32> {
  let qi = i + pu(2u) - pu(1u);
  var lo = 0u;
  if (pu(6u) > 0u && qi + 1u > pu(6u)) { lo = qi + 1u - pu(6u); }
  return vec2<u32>(lo, qi + 1u);
}
fn seen(i: u32, j: u32) -> bool { let lim = range(i); return j >= lim.x && j < lim.y; }
/** query row i of (b, h) = bh: its batch, its kv head, its offset in q/out/dout, its index in lse/dots */
struct QRow { b: u32, kh: u32, qo: u32, row: u32 }
fn qrow(bh: u32, i: u32) -> QRow {
  let h = bh % pu(3u); let b = bh / pu(3u);
  return QRow(b, h / (pu(3u) / pu(4u)), ((b * pu(1u) + i) * pu(3u) + h) * pu(5u), bh * pu(1u) + i);
}
/** the offset of key/value row j of kv head kh in batch b */
fn krow(b: u32, j: u32, kh: u32) -> u32 { return ((b * pu(2u) + j) * pu(4u) + kh) * pu(5u); }
`;
}
