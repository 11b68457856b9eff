/**
 * Attention kernels (causal, grouped-query, sliding window, decode offsets): the forward pass with an online
 * softmax, flash-style tiles for head dims up to 128, and the backward pass from the saved log-sum-exp.
 * P = [B, Tq, Tk, H, KV, D, window (0: none), scale]
 */
import { HEAD, RO, RW } from '../wgsl';

export const ATTENTION_KERNELS = {
  /**
   * Causal grouped-query attention, one invocation per query row (b, h, i), online softmax over the visible keys:
   * the T×T matrix never exists. Writes out and the row's log-sum-exp. P = [B, Tq, Tk, H, KV, D, window (0: none), scale]
   */
  attention:
    HEAD +
    RO(1, 'q') +
    RO(2, 'k') +
    RO(3, 'v') +
    RW(4, 'o') +
    RW(5, 'lse') +
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
   * tiles of 16, staged in workgroup memory so each K and V row is read once per tile instead of once per query.
   * Head dim ≤ 128. Grid: one workgroup per (b, h, block of 32 queries).
   */
  attention_tiled:
    HEAD +
    RO(1, 'q') +
    RO(2, 'k') +
    RO(3, 'v') +
    RW(4, 'o') +
    RW(5, 'lse') +
    ATTN_COMMON() +
    ATTN_TILES() +
    /* wgsl */ `
@compute @workgroup_size(32) fn main(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let w = wg.x + wg.y * nw.x;
  if (w >= pu(0u) * pu(3u) * qblocks()) { return; }
  let qb = w % qblocks();
  let i = qb * 32u + l.x;
  let live = i < pu(1u);
  let Q = qrow(w / qblocks(), min(i, pu(1u) - 1u)); // rows past Tq compute row Tq − 1 and write nothing
  let D = pu(5u); let qo = Q.qo;
  var qv: array<f32, 128>;
  var acc: array<f32, 128>;
  for (var d = 0u; d < D; d = d + 1u) { qv[d] = q[qo + d]; acc[d] = 0.0; }
  var m = -3.0e38; var lsum = 0.0;
  let mine = range(min(i, pu(1u) - 1u));
  let span = blockSpan(qb);
  for (var j0 = span.x; j0 < span.y; j0 = j0 + 16u) {
    loadTile(Q.b, Q.kh, j0, l.x);
    workgroupBarrier();
    if (live) {
      for (var jj = 0u; jj < 16u; jj = jj + 1u) {
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

  /** the per-query-row backward pass (dq and Σ P·dP), with K and V staged in tiles as attention_tiled does */
  attention_bwd_q_tiled:
    HEAD +
    RO(1, 'q') +
    RO(2, 'k') +
    RO(3, 'v') +
    RO(4, 'dout') +
    RO(5, 'lse') +
    RW(6, 'dq') +
    RW(7, 'dots') +
    ATTN_COMMON() +
    ATTN_TILES() +
    /* wgsl */ `
@compute @workgroup_size(32) fn main(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let w = wg.x + wg.y * nw.x;
  if (w >= pu(0u) * pu(3u) * qblocks()) { return; }
  let qb = w % qblocks();
  let i = qb * 32u + l.x;
  let live = i < pu(1u);
  let ic = min(i, pu(1u) - 1u); // rows past Tq compute row Tq − 1 and write nothing
  let Q = qrow(w / qblocks(), ic);
  let D = pu(5u); let qo = Q.qo;
  var qv: array<f32, 128>;
  var dv: array<f32, 128>;
  var acc: array<f32, 128>;
  for (var d = 0u; d < D; d = d + 1u) { qv[d] = q[qo + d]; dv[d] = dout[qo + d]; acc[d] = 0.0; }
  let L = lse[Q.row];
  let mine = range(ic);
  let span = blockSpan(qb);
  var dot = 0.0;
  for (var round = 0u; round < 2u; round = round + 1u) {
    for (var j0 = span.x; j0 < span.y; j0 = j0 + 16u) {
      loadTile(Q.b, Q.kh, j0, l.x);
      workgroupBarrier();
      if (live) {
        for (var jj = 0u; jj < 16u; jj = jj + 1u) {
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
   * Backward, per query row: with P recomputed from the saved log-sum-exp, dot = Σ_j P·dP and
   * dq = Σ_j P·(dP − dot)·scale·k_j. Writes dq and dot (for the per-key pass). Same P as attention.
   */
  attention_bwd_q:
    HEAD +
    RO(1, 'q') +
    RO(2, 'k') +
    RO(3, 'v') +
    RO(4, 'dout') +
    RO(5, 'lse') +
    RW(6, 'dq') +
    RW(7, 'dots') +
    ATTN_COMMON() +
    /* wgsl */ `
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let r = flat(g, nw, 64u);
  if (r >= pu(0u) * pu(3u) * pu(1u)) { return; }
  let i = r % pu(1u);
  let Q = qrow(r / pu(1u), i);
  let D = pu(5u); let b = Q.b; let kh = Q.kh; let qo = Q.qo;
  let L = lse[Q.row];
  let lim = range(i);
  var dot = 0.0;
  for (var j = lim.x; j < lim.y; j = j + 1u) {
    let ko = ((b * pu(2u) + j) * pu(4u) + kh) * D;
    var s = 0.0; var dp = 0.0;
    for (var d = 0u; d < D; d = d + 1u) { s = s + q[qo + d] * k[ko + d]; dp = dp + dout[qo + d] * v[ko + d]; }
    dot = dot + exp(s * pf(7u) - L) * dp;
  }
  dots[Q.row] = dot;
  for (var d = 0u; d < D; d = d + 1u) { dq[qo + d] = 0.0; }
  for (var j = lim.x; j < lim.y; j = j + 1u) {
    let ko = ((b * pu(2u) + j) * pu(4u) + kh) * D;
    var s = 0.0; var dp = 0.0;
    for (var d = 0u; d < D; d = d + 1u) { s = s + q[qo + d] * k[ko + d]; dp = dp + dout[qo + d] * v[ko + d]; }
    let ds = exp(s * pf(7u) - L) * (dp - dot) * pf(7u);
    for (var d = 0u; d < D; d = d + 1u) { dq[qo + d] = dq[qo + d] + ds * k[ko + d]; }
  }
}`,

  /** Backward, per key row (b, kv head, j): dv_j = Σ P·dout_i, dk_j = Σ P·(dP − dot_i)·scale·q_i over the queries that see j */
  attention_bwd_kv:
    HEAD +
    RO(1, 'q') +
    RO(2, 'k') +
    RO(3, 'v') +
    RO(4, 'dout') +
    RO(5, 'lse') +
    RO(6, 'dots') +
    RW(7, 'dk') +
    RW(8, 'dv') +
    ATTN_COMMON() +
    /* wgsl */ `
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let r = flat(g, nw, 64u);
  let Tk = pu(2u); let KV = pu(4u); let H = pu(3u); let Tq = pu(1u); let D = pu(5u);
  if (r >= pu(0u) * KV * Tk) { return; }
  let j = r % Tk; let bk = r / Tk; let kh = bk % KV; let b = bk / KV;
  let ko = ((b * Tk + j) * KV + kh) * D;
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
};

/**
 * The tiled kernels' pieces: a workgroup takes block qb of 32 query rows (of qblocks() per (b, h)); the keys any
 * of them sees; and K and V rows [j0, j0+16) of kv head kh, staged in workgroup memory (zeros past Tk).
 */
function ATTN_TILES(): string {
  return /* wgsl */ `
fn qblocks() -> u32 { return (pu(1u) + 31u) / 32u; }
fn blockSpan(qb: u32) -> vec2<u32> { return vec2<u32>(range(qb * 32u).x, range(min(qb * 32u + 31u, pu(1u) - 1u)).y); }
var<workgroup> Ks: array<f32, 2048>;
var<workgroup> Vs: array<f32, 2048>;
fn loadTile(b: u32, kh: u32, j0: u32, t: u32) {
  let D = pu(5u); let Tk = pu(2u);
  for (var e = t; e < 16u * D; e = e + 32u) {
    let j = j0 + e / D;
    if (j < Tk) {
      let ko = ((b * Tk + j) * pu(4u) + kh) * D + e % D;
      Ks[e] = k[ko]; Vs[e] = v[ko];
    } else { Ks[e] = 0.0; Vs[e] = 0.0; }
  }
}
`;
}

/** the visible key range of query i (causal, sliding window), and the test for one key */
function ATTN_COMMON(): string {
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
`;
}
