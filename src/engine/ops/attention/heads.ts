/**
 * Programs of kernel calls, one per head or group of heads, that heads.wat runs with the threads taking whole
 * programs (the layout of a program and its ops is in heads.wat). attention.ts writes them; each call here appends
 * one op to the program that is open.
 */
import { COUNTER, WasmRuntime, f32Bits as f32bits } from '../wasm';

const OP_INTS = 16;

/** a product C = op(A)·Bpacked for gemm_k: panels [i0, i1) × [j0, j1), k in [ks, K) */
export interface GemmOp {
  pa: number;
  pb: number;
  pc: number;
  K: number;
  Np: number;
  i0: number;
  i1: number;
  j0: number;
  j1: number;
  lda: number; // 0: A packed in panels of `ka` k-rows
  M: number;
  acc: boolean;
  ka: number;
  kb: number; // B's panels hold kb k-rows
  ks: number;
}

export class HeadPrograms {
  private ops = new Int32Array(OP_INTS * 64);
  private count = 0; // ops written
  private progs: number[] = []; // first op, op count
  private first = 0;

  /** ops appended from here on make up the next program, until `close` */
  open(): void {
    this.first = this.count;
  }
  close(): void {
    this.progs.push(this.first, this.count - this.first);
  }
  private op(code: number, args: number[]): void {
    if ((this.count + 1) * OP_INTS > this.ops.length) {
      const more = new Int32Array(this.ops.length * 2);
      more.set(this.ops);
      this.ops = more;
    }
    const at = this.count++ * OP_INTS;
    this.ops[at] = code;
    for (let i = 0; i < args.length; i++) this.ops[at + 1 + i] = args[i];
  }
  gemm(g: GemmOp): void {
    this.op(0, [g.pa, g.pb, g.pc, g.K, g.Np, g.i0, g.i1, g.j0, g.j1, g.lda, g.M, g.acc ? 1 : 0, g.ka, g.kb, g.ks]);
  }
  softmaxCausal(p: number, Tq: number, Tk: number, ld: number, window: number, scale: number, stats: number): void {
    this.op(1, [p, Tq, Tk, ld, window, f32bits(scale), stats]);
  }
  softmaxRecompute(p: number, Tq: number, Tk: number, ld: number, window: number, scale: number, lse: number): void {
    this.op(2, [p, Tq, Tk, ld, window, f32bits(scale), lse]);
  }
  softmaxBackward(dp: number, ldd: number, pp: number, ldp: number, Tq: number, Tk: number, scale: number): void {
    this.op(3, [dp, ldd, pp, ldp, Tq, Tk, f32bits(scale)]);
  }
  packAt(src: number, lds: number, M: number, K: number, dst: number): void {
    this.op(4, [src, lds, M, K, dst]);
  }
  packB(src: number, K: number, N: number, lds: number, dst: number): void {
    this.op(5, [src, K, N, lds, dst]);
  }
  copyRows(src: number, lds: number, dst: number, ldd: number, rows: number, cols: number): void {
    this.op(6, [src, lds, dst, ldd, rows, cols]);
  }

  /** floats of arena the table of `programs` programs of `ops` ops in all takes (what the estimate counts) */
  static floats(programs: number, ops: number): number {
    return 2 * programs + OP_INTS * ops;
  }

  /** run every program, each on one thread, on up to `threads` threads; `parallel` false: this thread alone */
  run(rt: WasmRuntime, parallel: boolean): void {
    const n = this.progs.length / 2;
    if (n === 0) return;
    const ints = this.count * OP_INTS;
    const table = rt.alloc(HeadPrograms.floats(n, this.count));
    const at = table + 8 * n;
    const i32 = new Int32Array(rt.buffer(), table, 2 * n + ints);
    for (let p = 0; p < n; p++) {
      i32[2 * p] = at + this.progs[2 * p] * OP_INTS * 4;
      i32[2 * p + 1] = this.progs[2 * p + 1];
    }
    i32.set(this.ops.subarray(0, ints), 2 * n);
    rt.dispatch('heads_steal', parallel ? Math.min(rt.threads, n) : 1, [table, n, COUNTER]);
  }
}
