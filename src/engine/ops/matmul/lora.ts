/**
 * A LoRA linear layer on the CPU in one arena session per pass, the base product and the LoRA products on the
 * same copies (gemm.ts's gemmAt on byte offsets):
 *
 *   forward   h = xd·Aᵀ; y = x·Wᵀ + b; y += h·(s·B)ᵀ into the same C, so y is copied out once, h kept;
 *   backward  dx (+)= dy·W; dh = s·dy·B; dx += dh·A (with dropout: dx += (dh·A)⊙mask on the way out);
 *             dB += s·dyᵀ·h; dA += dhᵀ·xd, dy copied in once and read by all four (the gradients' operands in
 *             place, unpacked: gemmTnAt).
 *
 * Each product is the one the composed sequence (core/lora-linear.ts) runs, on the same kernel with the same sums in
 * the same order, so the results are the same bit for bit; only the copies in and out are fewer. A session's arena
 * layout is planned (forwardPlan, backwardPlan) before anything runs, so the memory estimate counts exactly what a
 * call takes.
 */
import { WasmRuntime } from '../wasm';
import { GEMV_MAX_ROWS } from './gemv';
import { copyIn, copyOut, gemmAt, gemmFns, gemmTnAt, gemmTraffic, placeAt } from './gemm';

/** the shape of a LoRA linear: N rows (tokens), W (out, inp) of element kind wKind (0 f32, 1 bf16, 2 f16), rank r */
export interface LoraShape {
  N: number;
  inp: number;
  out: number;
  r: number;
  wKind: number;
  dropout: boolean;
}

const up4 = (n: number) => (n + 3) & ~3;
const up8 = (n: number) => (n + 7) & ~7;

/** byte offsets in one block, as WasmRuntime.alloc lays them out (16-byte aligned, 32 bytes of slack after each) */
class Layout {
  top = 0;
  peak = 0;
  take(floats: number): number {
    const off = this.top;
    this.top += Math.ceil((floats * 4) / 16) * 16 + 32;
    this.peak = Math.max(this.peak, this.top);
    return off;
  }
}

/**
 * The arena block of a forward pass: regions every phase uses first, then each phase's own from the same offset (a
 * phase's packs and operand copies are dead when the next one starts). Rooms for W, A and B are taken even when they
 * are resident and read in place, so a call takes one size whatever is resident (the size the estimate counts).
 */
export function forwardPlan(s: LoraShape) {
  const { N, inp, out, r } = s;
  const L = new Layout();
  const [x, cy, ch] = [L.take(N * inp), L.take(up4(N) * up8(out)), L.take(up4(N) * up8(r))];
  const phase = L.top;
  const xd = s.dropout ? L.take(N * inp) : x;
  const [aRoom, pA] = [L.take(r * inp), L.take(up8(r) * inp)];
  L.top = phase;
  const [wRoom, pW] = [L.take(wFloats(s)), L.take(up8(out) * inp)];
  L.top = phase;
  const [bRoom, pB] = [L.take(out * r), L.take(up8(out) * r)];
  return { bytes: L.peak, x, cy, ch, xd, aRoom, pA, wRoom, pW, bRoom, pB };
}

/** the arena block of a backward pass, laid out as forwardPlan's */
export function backwardPlan(s: LoraShape) {
  const { N, inp, out, r } = s;
  const L = new Layout();
  const Mp = up4(N);
  const [dy, cdx, cdh] = [L.take(N * out), L.take(Mp * up8(inp)), L.take(Mp * up8(r))];
  const cdxd = s.dropout ? L.take(Mp * up8(inp)) : cdx;
  const phase = L.top;
  const [wRoom, pW] = [L.take(wFloats(s)), L.take(up8(inp) * out)];
  L.top = phase;
  const [bRoom, pB] = [L.take(out * r), L.take(up8(r) * out)];
  L.top = phase;
  const [aRoom, pA] = [L.take(r * inp), L.take(up8(inp) * r)];
  L.top = phase;
  const [h, cdBT] = [L.take(N * r), L.take(up4(r) * up8(out))];
  L.top = phase;
  const [xd, cdA] = [L.take(N * inp), L.take(up4(r) * up8(inp))];
  return { bytes: L.peak, dy, cdx, cdh, cdxd, wRoom, pW, bRoom, pB, aRoom, pA, h, cdBT, xd, cdA };
}

/** floats of W's copy: its own elements, half floats two to a float */
const wFloats = (s: LoraShape) => (s.wKind ? Math.ceil((s.out * s.inp) / 2) : s.out * s.inp);

const planBytes = (s: LoraShape, backward: boolean) => (backward ? backwardPlan(s) : forwardPlan(s)).bytes;

/**
 * Whether a pass runs fused: not for a few rows (decoding takes the matrix-vector kernels, which read W once
 * without packing it), nor when its block would pass MAX_BYTES (the composed products then run in blocks).
 */
export function loraFused(s: LoraShape, backward: boolean): boolean {
  return s.N > GEMV_MAX_ROWS && planBytes(s, backward) + 64 <= WasmRuntime.MAX_BYTES;
}

/** floats of WebAssembly memory a fused pass holds (its block and the alloc's slack), what the estimate counts */
export function loraArenaFloats(s: LoraShape, backward: boolean): number {
  return planBytes(s, backward) / 4 + 8;
}

export interface LoraForwardArgs extends LoraShape {
  x: Float32Array; // (N, inp)
  xd: Float32Array; // the dropped-out x (x itself without dropout)
  w: Float32Array | Uint16Array; // (out, inp)
  bias?: Float32Array; // (out)
  A: Float32Array; // (r, inp)
  B: Float32Array; // (out, r)
  scale: number;
  y: Float32Array; // (N, out), written
  h: Float32Array; // (N, r), written
}

/** y = x·Wᵀ + b + s·(xd·Aᵀ)·Bᵀ and h = xd·Aᵀ */
export function loraForward(rt: WasmRuntime, g: LoraForwardArgs): void {
  const { N, inp, out, r } = g;
  const p = forwardPlan(g);
  const Npo = up8(out),
    Npr = up8(r);
  rt.arenaReset();
  const o = rt.alloc(p.bytes / 4);
  copyIn(rt, g.x, N, inp, o + p.x, inp);
  if (g.dropout) copyIn(rt, g.xd, N, inp, o + p.xd, inp);
  const f32 = { bKind: 0, transB: true };
  // h = xd·Aᵀ
  const aAt = placeAt(rt, g.A, o + p.aRoom);
  gemmAt(rt, { M: N, N: r, K: inp, a: o + p.xd, lda: inp * 4, b: aAt, ...f32, ldb: inp * 4, pb: o + p.pA, c: o + p.ch, acc: false });
  // y = x·Wᵀ (+ b)
  const wAt = placeAt(rt, g.w, o + p.wRoom);
  const es = g.wKind ? 2 : 4;
  gemmAt(rt, {
    M: N,
    N: out,
    K: inp,
    a: o + p.x,
    lda: inp * 4,
    b: wAt,
    bKind: g.wKind,
    transB: true,
    ldb: inp * es,
    pb: o + p.pW,
    c: o + p.cy,
    acc: false,
  });
  if (g.bias) {
    const f = rt.mem(),
      b = g.bias;
    for (let i = 0, row = (o + p.cy) >> 2; i < N; i++, row += Npo) for (let j = 0; j < out; j++) f[row + j] += b[j];
  }
  // y += h·(s·B)ᵀ, accumulated in the same C
  const bAt = placeAt(rt, g.B, o + p.bRoom);
  gemmAt(rt, {
    M: N,
    N: out,
    K: r,
    a: o + p.ch,
    lda: Npr * 4,
    b: bAt,
    ...f32,
    ldb: r * 4,
    pb: o + p.pB,
    c: o + p.cy,
    acc: true,
    alpha: g.scale,
  });
  copyOut(rt, o + p.cy, Npo, g.y, N, out);
  copyOut(rt, o + p.ch, Npr, g.h, N, r);
}

export interface LoraBackwardArgs extends LoraShape {
  dy: Float32Array; // (N, out)
  w: Float32Array | Uint16Array; // (out, inp)
  A: Float32Array;
  B: Float32Array;
  scale: number;
  h: Float32Array; // (N, r) saved by the forward pass
  xd: Float32Array; // (N, inp)
  mask: Float32Array | null; // (N, inp) with dropout
  dx: Float32Array; // (N, inp): written, or added to with `into`
  into: boolean;
  dA: Float32Array; // (r, inp), added to
  dB: Float32Array; // (out, r), added to
}

/** dx (+)= dy·W + (s·dy·B·A)⊙mask, dB += s·dyᵀ·h, dA += (s·dy·B)ᵀ·xd */
export function loraBackward(rt: WasmRuntime, g: LoraBackwardArgs): void {
  const { N, inp, out, r, scale } = g;
  const p = backwardPlan(g);
  const Npi = up8(inp),
    Npr = up8(r);
  rt.arenaReset();
  const o = rt.alloc(p.bytes / 4);
  copyIn(rt, g.dy, N, out, o + p.dy, out);
  if (g.into) copyIn(rt, g.dx, N, inp, o + p.cdx, Npi);
  const dy = { a: o + p.dy, lda: out * 4 };
  // dx (+)= dy·W
  const wAt = placeAt(rt, g.w, o + p.wRoom);
  gemmAt(rt, {
    M: N,
    N: inp,
    K: out,
    ...dy,
    b: wAt,
    bKind: g.wKind,
    ldb: inp * (g.wKind ? 2 : 4),
    pb: o + p.pW,
    c: o + p.cdx,
    acc: g.into,
  });
  // dh = s·(dy·B): scaled after the product, as the composed matmul scales a fresh result
  const bAt = placeAt(rt, g.B, o + p.bRoom);
  gemmAt(rt, { M: N, N: r, K: out, ...dy, b: bAt, bKind: 0, ldb: r * 4, pb: o + p.pB, c: o + p.cdh, acc: false });
  const f = rt.mem();
  if (scale !== 1)
    for (let i = 0, row = (o + p.cdh) >> 2; i < N; i++, row += Npr) for (let j = 0; j < r; j++) f[row + j] = scale * f[row + j];
  // dx += dh·A into the same C; with dropout dh·A apart, masked on the way out
  const aAt = placeAt(rt, g.A, o + p.aRoom);
  const dh = { a: o + p.cdh, lda: Npr * 4 };
  gemmAt(rt, { M: N, N: inp, K: r, ...dh, b: aAt, bKind: 0, ldb: inp * 4, pb: o + p.pA, c: o + (g.mask ? p.cdxd : p.cdx), acc: !g.mask });
  // dB += s·dyᵀ·h, as its transpose (s·h)ᵀ·dy, and dA += dhᵀ·xd, on dy, h, dh and xd where they lie
  addGradT(rt, { grad: g.dB, at: o + p.cdBT, out, r, N, dy: o + p.dy, h: g.h, hAt: o + p.h, scale });
  addGrad(rt, { grad: g.dA, at: o + p.cdA, rows: r, cols: inp, K: N, ...dh, x: g.xd, xAt: o + p.xd });
  if (!g.mask) return copyOut(rt, o + p.cdx, Npi, g.dx, N, inp);
  // dx = (dy·W) + (dh·A)⊙mask, rounded as the composed mul and add round
  const m = g.mask,
    dx = g.dx,
    f2 = rt.mem();
  for (let i = 0, a = (o + p.cdx) >> 2, b = (o + p.cdxd) >> 2; i < N; i++, a += Npi, b += Npi)
    for (let j = 0, k = i * inp; j < inp; j++, k++) dx[k] = f2[a + j] + Math.fround(f2[b + j] * m[k]);
  gemmTraffic.out += N * inp * 4;
}

/**
 * dB (out × r, host memory) += s·dyᵀ·h, computed as dBᵀ += (s·h)ᵀ·dy through the arena at `at` (r rows of up8(out)),
 * with dy (at `dy`) and s·h (copied in at `hAt`, then scaled as the composed product scales its packed h) read in
 * place: the same products summed in the same order as s·dyᵀ·h, so the same bits, and neither operand packed.
 */
function addGradT(
  rt: WasmRuntime,
  g: { grad: Float32Array; at: number; out: number; r: number; N: number; dy: number; h: Float32Array; hAt: number; scale: number },
): void {
  const { out, r, N, grad } = g;
  const ld = up8(out);
  copyIn(rt, g.h, N, r, g.hAt, r);
  if (g.scale !== 1) gemmFns(rt).scale(g.hAt, up4(N * r), g.scale); // up to 3 floats of the slack past h
  const f = rt.mem();
  for (let j = 0, c = g.at >> 2; j < r; j++, c += ld) for (let o = 0; o < out; o++) f[c + o] = grad[o * r + j];
  gemmTnAt(rt, { M: r, N: out, K: N, a: g.hAt, lda: r * 4, b: g.dy, ldb: out * 4, c: g.at, acc: true });
  const f2 = rt.mem();
  for (let j = 0, c = g.at >> 2; j < r; j++, c += ld) for (let o = 0; o < out; o++) grad[o * r + j] = f2[c + o];
  gemmTraffic.in += out * r * 4;
  gemmTraffic.out += out * r * 4;
}

/**
 * A LoRA gradient (rows × cols, host memory) += Aᵀ·x: A (K, rows) lies in the arena at `a` (row stride `lda` bytes);
 * x (K, cols) is copied in at `xAt`; both are read in place; the gradient goes through the arena at `at` (row stride
 * up8(cols)) and back.
 */
function addGrad(
  rt: WasmRuntime,
  g: { grad: Float32Array; at: number; rows: number; cols: number; K: number; a: number; lda: number; x: Float32Array; xAt: number },
): void {
  const { cols } = g;
  const ld = up8(cols);
  copyIn(rt, g.x, g.K, cols, g.xAt, cols);
  copyIn(rt, g.grad, g.rows, cols, g.at, ld);
  gemmTnAt(rt, { M: g.rows, N: cols, K: g.K, a: g.a, lda: g.lda, b: g.xAt, ldb: cols * 4, c: g.at, acc: true });
  copyOut(rt, g.at, ld, g.grad, g.rows, cols);
}
