/**
 * Resident tensors of the CPU backend: the base weight matrices (f32, half-float bits, 4-bit codes and scales) and
 * the LoRA matrices live in the WebAssembly memory's heap (`WasmRuntime.hold`), so the kernels read them in place. A
 * decode step then streams each weight once, where copying it into the arena first read it twice and wrote it once,
 * on one thread. A tensor that does not fit the heap stays in host memory and is copied in per call, as before.
 *
 * A block is given back when its tensor is freed, or, for a backend dropped without `dispose`, when its view is
 * garbage-collected.
 */
import type { WasmRuntime } from '../../ops/wasm';
import type { QuantWeight } from '../../core/qweight';

type Resident = Float32Array | Uint16Array | Uint8Array;

export class Residency {
  private registry: FinalizationRegistry<number>;

  constructor(private rt: WasmRuntime) {
    this.registry = new FinalizationRegistry((off) => rt.unhold(off));
  }

  /** a copy of `data` in the heap, or null when the heap is full */
  place<T extends Resident>(data: T): T | null {
    const off = this.rt.hold(data.byteLength);
    if (off < 0) return null;
    const Ctor = data.constructor as new (b: ArrayBufferLike, off: number, n: number) => T;
    const view = new Ctor(this.rt.buffer(), off, data.length);
    view.set(data as never);
    this.registry.register(view, off, view);
    return view;
  }

  /** give a resident view's block back (nothing for host memory) */
  release(view: Resident | undefined): void {
    if (!view) return;
    const off = this.rt.offsetOf(view);
    if (off < 0) return;
    this.registry.unregister(view);
    this.rt.unhold(off);
  }

  /** a 4-bit weight with its codes and scales in the heap, all or nothing (the weight itself when they do not fit) */
  placeQuant(q: QuantWeight): QuantWeight {
    const placed: Resident[] = [];
    const put = <T extends Resident>(x: T): T | null => {
      const v = this.place(x);
      if (v) placed.push(v);
      return v;
    };
    const packed = put(q.packed);
    const absmax = q.absmax && put(q.absmax);
    const n = q.nested;
    const codes = n && put(n.codes);
    const nabs = n && put(n.absmax);
    const map = n && put(n.map);
    if (!packed || (q.absmax && !absmax) || (n && !(codes && nabs && map))) {
      for (const v of placed) this.release(v);
      return q;
    }
    return { ...q, packed, absmax: absmax ?? undefined, nested: n && { ...n, codes: codes!, absmax: nabs!, map: map! } };
  }

  releaseQuant(q: QuantWeight): void {
    for (const v of [q.packed, q.absmax, q.nested?.codes, q.nested?.absmax, q.nested?.map]) this.release(v);
  }

  /** whether a view lies in the heap */
  has(view: Resident): boolean {
    return this.rt.offsetOf(view) >= 0;
  }
}
