/**
 * This machine's WebAssembly SIMD peak on one core: a loop of ACC independent f32x4 chains acc = acc·m + m, written
 * as f32x4.mul then f32x4.add, or as one f32x4.relaxed_madd where WebAssembly.validate accepts relaxed SIMD (Node 22,
 * or Node 20 with --experimental-wasm-relaxed-simd). 8 flops per chain per iteration. ACC chains cover the latency
 * of a multiply and an add on two pipes; more would not fit V8's registers (x64 allocates 15 xmm registers: the
 * chains and m). Chains that each depend on themselves keep V8's scheduler from reordering the loop into spills,
 * which it does to a loop of separate multiply and add chains. The module's bytes are written here by hand: it is
 * a dozen instructions, and the bench needs no assembler at run time.
 */

/** independent chains: 14 with m fill x64's 15 allocatable xmm registers; arm64 has 32 vector registers */
const ACC = process.arch === 'arm64' ? 24 : 14;

const leb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
};
const section = (id: number, body: number[]) => [id, ...leb(body.length), ...body];
const vec = (items: number[][]) => [...leb(items.length), ...items.flat()];

const SIMD = 0xfd;
const op = {
  localGet: (i: number) => [0x20, ...leb(i)],
  localSet: (i: number) => [0x21, ...leb(i)],
  localTee: (i: number) => [0x22, ...leb(i)],
  f32x4Splat: [SIMD, ...leb(0x13)],
  f32x4Extract0: [SIMD, ...leb(0x1f), 0],
  f32x4Add: [SIMD, ...leb(0xe4)],
  f32x4Mul: [SIMD, ...leb(0xe6)],
  f32x4RelaxedMadd: [SIMD, ...leb(0x105)],
};

/** (func (param n i32) (param m f32) (result f32)): n iterations of the ACC chains; returns the accumulators' sum */
function peakModule(fma: boolean): Uint8Array<ArrayBuffer> {
  const N = 0,
    M = 1,
    MV = 2,
    acc = (i: number) => 3 + i;
  const code: number[] = [...op.localGet(M), ...op.f32x4Splat, ...op.localSet(MV)];
  for (let i = 0; i < ACC; i++) code.push(...op.localGet(MV), ...op.localSet(acc(i)));
  code.push(0x03, 0x40); // loop
  for (let i = 0; i < ACC; i++) {
    code.push(...op.localGet(acc(i)), ...op.localGet(MV));
    if (fma) code.push(...op.localGet(MV), ...op.f32x4RelaxedMadd);
    else code.push(...op.f32x4Mul, ...op.localGet(MV), ...op.f32x4Add);
    code.push(...op.localSet(acc(i)));
  }
  // n -= 1; br_if n != 0
  code.push(...op.localGet(N), 0x41, 1, 0x6b, ...op.localTee(N), 0x0d, 0, 0x0b);
  code.push(...op.localGet(acc(0)));
  for (let i = 1; i < ACC; i++) code.push(...op.localGet(acc(i)), ...op.f32x4Add);
  code.push(...op.f32x4Extract0, 0x0b);
  const locals = vec([[...leb(1 + ACC), 0x7b]]); // v128: m splatted, the accumulators
  const body = [...locals, ...code];
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec([[0x60, ...vec([[0x7f], [0x7d]]), ...vec([[0x7d]])]])),
    ...section(3, vec([[0]])),
    ...section(7, vec([[...vec('peak'.split('').map((c) => [c.charCodeAt(0)])), 0x00, 0]])),
    ...section(10, vec([[...leb(body.length), ...body]])),
  ]);
}

/** whether this V8 runs relaxed SIMD (f32x4.relaxed_madd) */
export function relaxedSimd(): boolean {
  return WebAssembly.validate(peakModule(true));
}

/**
 * GFLOP/s of one thread running the loop: calls of growing length until one takes 50 ms (V8 tiers the function up
 * from its baseline compiler meanwhile), then the best of 15 calls of that length (a peak: on a shared machine the
 * best call is the one least disturbed).
 */
export function simdPeak(fma: boolean): number {
  const bytes = peakModule(fma);
  if (!WebAssembly.validate(bytes)) return NaN;
  const peak = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports.peak as (n: number, m: number) => number;
  const flops = (n: number) => n * ACC * 8;
  let n = 1 << 12;
  for (let i = 0; i < 200; i++) {
    const t = performance.now();
    peak(n, 0.5); // acc → 1: no denormals, no overflow
    if (performance.now() - t > 50) break;
    if (i > 8) n *= 2;
  }
  let best = Infinity;
  for (let r = 0; r < 15; r++) {
    const t = performance.now();
    peak(n, 0.5); // acc → 1: no denormals, no overflow
    best = Math.min(best, performance.now() - t);
  }
  return flops(n) / best / 1e6;
}
