/**
 * Attention's backward pass in WGSL, from the forward's saved log-sum-exp (P is recomputed, never stored): per
 * query row, dq and the row's Σ P·dP ("dots"); then per key row, dk and dv over the queries that see it, so no
 * atomics are needed. Each pass has a plain per-row kernel (any head dim ≤ 256) and a faster one: tiled in
 * workgroup memory (head dim ≤ 128), or (the per-query pass, where the device has subgroups) one subgroup a row.
 * P = [B, Tq, Tk, H, KV, D, window (0: none), scale]; reference.ts is the spec.
 */
import { Caps, HEAD, RO, RW, enables } from '../wgsl';
import { ATTN_COMMON, ATTN_TILES, QBLOCK, TILED_D } from './attention.wgsl';

/** q, k, v, dout, lse, then dq and dots: the per-query kernels' bindings */
const BWD_Q = RO(1, 'q') + RO(2, 'k') + RO(3, 'v') + RO(4, 'dout') + RO(5, 'lse') + RW(6, 'dq') + RW(7, 'dots');
/** q, k, v, dout, lse, dots, then dk and dv: the per-key kernels' bindings */
const BWD_KV = RO(1, 'q') + RO(2, 'k') + RO(3, 'v') + RO(4, 'dout') + RO(5, 'lse') + RO(6, 'dots') + RW(7, 'dk') + RW(8, 'dv');

export const ATTENTION_BWD_KERNELS = {
  /** the per-query-row backward pass (dq and Σ P·dP), with K and V staged in tiles as attention_tiled does */
  attention_bwd_q_tiled: (c: Caps) =>
    HEAD +
    BWD_Q +
    ATTN_COMMON() +
    ATTN_TILES(c.attnKT) +
    /* wgsl */ `
@compute @workgroup_size(${QBLOCK}) fn main(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let w = wg.x + wg.y * nw.x;
  if (w >= pu(0u) * pu(3u) * qblocks()) { return; }
  let qb = w % qblocks();
  let i = qb * ${QBLOCK}u + l.x;
  let live = i < pu(1u);
  let ic = min(i, pu(1u) - 1u); // rows past Tq compute row Tq − 1 and write nothing
  let Q = qrow(w / qblocks(), ic);
  let D = pu(5u); let qo = Q.qo;
  var qv: array<f32, ${TILED_D}>;
  var dv: array<f32, ${TILED_D}>;
  var acc: array<f32, ${TILED_D}>;
  for (var d = 0u; d < D; d = d + 1u) { qv[d] = q[qo + d]; dv[d] = dout[qo + d]; acc[d] = 0.0; }
  let L = lse[Q.row];
  let mine = range(ic);
  let span = blockSpan(qb);
  var dot = 0.0;
  for (var round = 0u; round < 2u; round = round + 1u) {
    for (var j0 = span.x; j0 < span.y; j0 = j0 + ${c.attnKT}u) {
      loadTile(Q.b, Q.kh, j0, l.x);
      workgroupBarrier();
      if (live) {
        for (var jj = 0u; jj < ${c.attnKT}u; jj = jj + 1u) {
          let j = j0 + jj;
          if (j < mine.x || j >= mine.y) { continue; }
          var s = 0.0; var dp = 0.0;
          for (var d = 0u; d < D; d = d + 1u) { s = s + qv[d] * Ks[jj * D + d]; dp = dp + dv[d] * Vs[jj * D + d]; }
          let p = exp(s * pf(7u) - L);
          if (round == 0u) { dot = dot + p * dp; }
          else {
            let ds = p * (dp - dot) * pf(7u);
            for (var d = 0u; d < D; d = d + 1u) { acc[d] = acc[d] + ds * Ks[jj * D + d]; }
          }
        }
      }
      workgroupBarrier();
    }
  }
  if (live) {
    dots[Q.row] = dot;
    for (var d = 0u; d < D; d = d + 1u) { dq[qo + d] = acc[d]; }
  }
}`,

  /**
   * The per-query pass with subgroups, as attention_sg: one subgroup per query row, the lanes taking S keys at a
   * time. First dot = Σ_j P·dP (subgroupAdd of the lanes' terms), then dq = Σ_j P·(dP − dot)·scale·k_j with each
   * lane accumulating the head dims d ≡ lane (mod S). Head dim ≤ 256.
   */
  attention_bwd_q_sg: (c: Caps) =>
    enables(c) +
    HEAD +
    BWD_Q +
    ATTN_COMMON() +
    /* wgsl */ `
var<workgroup> qs: array<f32, 256>; // this row of q
var<workgroup> gs: array<f32, 256>; // this row of dout
var<workgroup> ds: array<f32, ${c.sg}>; // the tile's P·(dP − dot)·scale
/** the lane's key j of this row: P and dP (0 and 0 past the visible keys) */
fn pdp(Q: QRow, j: u32, on: bool, L: f32) -> vec2<f32> {
  if (!on) { return vec2<f32>(0.0, 0.0); }
  let ko = krow(Q.b, j, Q.kh);
  var s = 0.0; var dp = 0.0;
  for (var d = 0u; d < pu(5u); d = d + 1u) { s = s + qs[d] * k[ko + d]; dp = dp + gs[d] * v[ko + d]; }
  return vec2<f32>(exp(s * pf(7u) - L), dp);
}
@compute @workgroup_size(${c.sg}) fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let r = wg.x + wg.y * nw.x;
  if (r >= pu(0u) * pu(3u) * pu(1u)) { return; }
  let i = r % pu(1u);
  let Q = qrow(r / pu(1u), i);
  let D = pu(5u);
  for (var d = li; d < D; d = d + ${c.sg}u) { qs[d] = q[Q.qo + d]; gs[d] = dout[Q.qo + d]; }
  workgroupBarrier();
  let L = lse[Q.row];
  let lim = range(i);
  var dot = 0.0;
  for (var j0 = lim.x; j0 < lim.y; j0 = j0 + ${c.sg}u) {
    let pd = pdp(Q, j0 + li, j0 + li < lim.y, L);
    dot = dot + subgroupAdd(pd.x * pd.y);
  }
  var acc: array<f32, ${Math.ceil(256 / c.sg)}>; // head dims li + S·t
  for (var j0 = lim.x; j0 < lim.y; j0 = j0 + ${c.sg}u) {
    let pd = pdp(Q, j0 + li, j0 + li < lim.y, L);
    ds[li] = pd.x * (pd.y - dot) * pf(7u);
    workgroupBarrier();
    let n = min(${c.sg}u, lim.y - j0);
    for (var t = 0u; li + ${c.sg}u * t < D; t = t + 1u) {
      var a = acc[t];
      for (var jj = 0u; jj < n; jj = jj + 1u) { a = a + ds[jj] * k[krow(Q.b, j0 + jj, Q.kh) + li + ${c.sg}u * t]; }
      acc[t] = a;
    }
    workgroupBarrier();
  }
  if (li == 0u) { dots[Q.row] = dot; }
  for (var t = 0u; li + ${c.sg}u * t < D; t = t + 1u) { dq[Q.qo + li + ${c.sg}u * t] = acc[t]; }
}`,

  /**
   * Backward, per query row: with P recomputed from the saved log-sum-exp, dot = Σ_j P·dP and
   * dq = Σ_j P·(dP − dot)·scale·k_j. Writes dq and dot (for the per-key pass).
   */
  attention_bwd_q:
    HEAD +
    BWD_Q +
    ATTN_COMMON() +
    /* wgsl */ `
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let r = flat(g, nw, 64u);
  if (r >= pu(0u) * pu(3u) * pu(1u)) { return; }
  let i = r % pu(1u);
  let Q = qrow(r / pu(1u), i);
  let D = pu(5u); let qo = Q.qo;
  let L = lse[Q.row];
  let lim = range(i);
  var dot = 0.0;
  for (var j = lim.x; j < lim.y; j = j + 1u) {
    let ko = krow(Q.b, j, Q.kh);
    var s = 0.0; var dp = 0.0;
    for (var d = 0u; d < D; d = d + 1u) { s = s + q[qo + d] * k[ko + d]; dp = dp + dout[qo + d] * v[ko + d]; }
    dot = dot + exp(s * pf(7u) - L) * dp;
  }
  dots[Q.row] = dot;
  for (var d = 0u; d < D; d = d + 1u) { dq[qo + d] = 0.0; }
  for (var j = lim.x; j < lim.y; j = j + 1u) {
    let ko = krow(Q.b, j, Q.kh);
    var s = 0.0; var dp = 0.0;
    for (var d = 0u; d < D; d = d + 1u) { s = s + q[qo + d] * k[ko + d]; dp = dp + dout[qo + d] * v[ko + d]; }
    let ds = exp(s * pf(7u) - L) * (dp - dot) * pf(7u);
    for (var d = 0u; d < D; d = d + 1u) { dq[qo + d] = dq[qo + d] + ds * k[ko + d]; }
  }
}`,

  /**
   * Backward, per key row (b, kv head, j): dv_j = Σ P·dout_i, dk_j = Σ P·(dP − dot_i)·scale·q_i over the queries
   * that see j, one invocation per key row (any head dim ≤ 256).
   */
  attention_bwd_kv:
    HEAD +
    BWD_KV +
    ATTN_COMMON() +
    /* wgsl */ `
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let r = flat(g, nw, 64u);
  let Tk = pu(2u); let KV = pu(4u); let H = pu(3u); let Tq = pu(1u); let D = pu(5u);
  if (r >= pu(0u) * KV * Tk) { return; }
  let j = r % Tk; let bk = r / Tk; let kh = bk % KV; let b = bk / KV;
  let ko = krow(b, j, kh);
  for (var d = 0u; d < D; d = d + 1u) { dk[ko + d] = 0.0; dv[ko + d] = 0.0; }
  let grp = H / KV;
  for (var hh = 0u; hh < grp; hh = hh + 1u) {
    let h = kh * grp + hh;
    for (var i = 0u; i < Tq; i = i + 1u) {
      if (!seen(i, j)) { continue; }
      let Q = qrow(b * H + h, i);
      let qo = Q.qo;
      var s = 0.0; var dp = 0.0;
      for (var d = 0u; d < D; d = d + 1u) { s = s + q[qo + d] * k[ko + d]; dp = dp + dout[qo + d] * v[ko + d]; }
      let p = exp(s * pf(7u) - lse[Q.row]);
      let ds = p * (dp - dots[Q.row]) * pf(7u);
      for (var d = 0u; d < D; d = d + 1u) { dv[ko + d] = dv[ko + d] + p * dout[qo + d]; dk[ko + d] = dk[ko + d] + ds * q[qo + d]; }
    }
  }
}`,

  /**
   * The per-key pass tiled: a workgroup takes kvKB key rows of one (b, kv head), one invocation each, holding its
   * k, v, dk and dv in registers, and walks the queries that see any of them (each head of the group in turn) in
   * tiles of kvQT rows of q and dout (with their lse and dots) staged in workgroup memory, so a query row is read
   * once per tile rather than once per key. Head dim ≤ 128. Grid: one workgroup per (b, kv head, block of keys).
   */
  attention_bwd_kv_tiled: (c: Caps) =>
    HEAD +
    BWD_KV +
    ATTN_COMMON() +
    /* wgsl */ `
var<workgroup> Qs: array<f32, ${c.kvQT * TILED_D}>;
var<workgroup> Gs: array<f32, ${c.kvQT * TILED_D}>;
var<workgroup> Ls: array<f32, ${c.kvQT}>;
var<workgroup> Ds: array<f32, ${c.kvQT}>;
fn kblocks() -> u32 { return (pu(2u) + ${c.kvKB - 1}u) / ${c.kvKB}u; }
/** the queries [lo, hi) that see some key of block jb: query i (position i + Tk − Tq) sees j ≤ its position, within the window */
fn qspan(jb: u32) -> vec2<u32> {
  let off = pu(2u) - pu(1u);
  let j0 = jb * ${c.kvKB}u; let j1 = min(j0 + ${c.kvKB}u, pu(2u)) - 1u;
  let lo = select(0u, j0 - off, j0 > off);
  var hi = pu(1u);
  if (pu(6u) > 0u) { hi = min(hi, select(0u, j1 + pu(6u) - off, j1 + pu(6u) > off)); }
  return vec2<u32>(lo, max(lo, hi));
}
@compute @workgroup_size(${c.kvKB}) fn main(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let w = wg.x + wg.y * nw.x;
  let Tk = pu(2u); let KV = pu(4u); let H = pu(3u); let Tq = pu(1u); let D = pu(5u);
  if (w >= pu(0u) * KV * kblocks()) { return; }
  let jb = w % kblocks(); let bk = w / kblocks(); let kh = bk % KV; let b = bk / KV;
  let j = jb * ${c.kvKB}u + l.x;
  let live = j < Tk;
  let ko = krow(b, min(j, Tk - 1u), kh); // keys past Tk compute key Tk − 1 and write nothing
  var kr: array<f32, ${TILED_D}>; var vr: array<f32, ${TILED_D}>;
  var gk: array<f32, ${TILED_D}>; var gv: array<f32, ${TILED_D}>;
  for (var d = 0u; d < D; d = d + 1u) { kr[d] = k[ko + d]; vr[d] = v[ko + d]; gk[d] = 0.0; gv[d] = 0.0; }
  let span = qspan(jb);
  let grp = H / KV;
  for (var hh = 0u; hh < grp; hh = hh + 1u) {
    let bh = b * H + kh * grp + hh;
    for (var i0 = span.x; i0 < span.y; i0 = i0 + ${c.kvQT}u) {
      workgroupBarrier(); // the last tile's readers are done
      for (var e = l.x; e < ${c.kvQT}u * D; e = e + ${c.kvKB}u) {
        let i = i0 + e / D;
        if (i < span.y) { let Q = qrow(bh, i); Qs[e] = q[Q.qo + e % D]; Gs[e] = dout[Q.qo + e % D]; }
      }
      for (var e = l.x; e < ${c.kvQT}u; e = e + ${c.kvKB}u) {
        if (i0 + e < span.y) { let row = bh * Tq + i0 + e; Ls[e] = lse[row]; Ds[e] = dots[row]; }
      }
      workgroupBarrier();
      if (live) {
        for (var ii = 0u; ii < ${c.kvQT}u; ii = ii + 1u) {
          let i = i0 + ii;
          if (i >= span.y || !seen(i, j)) { continue; }
          var s = 0.0; var dp = 0.0;
          for (var d = 0u; d < D; d = d + 1u) { s = s + Qs[ii * D + d] * kr[d]; dp = dp + Gs[ii * D + d] * vr[d]; }
          let p = exp(s * pf(7u) - Ls[ii]);
          let gs = p * (dp - Ds[ii]) * pf(7u);
          for (var d = 0u; d < D; d = d + 1u) { gv[d] = gv[d] + p * Gs[ii * D + d]; gk[d] = gk[d] + gs * Qs[ii * D + d]; }
        }
      }
    }
  }
  if (live) { for (var d = 0u; d < D; d = d + 1u) { dk[ko + d] = gk[d]; dv[ko + d] = gv[d]; } }
}`,
};
