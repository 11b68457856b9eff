/**
 * Which build of the CPU kernels this process runs. scripts/wat.mjs assembles two modules from the same .wat
 * fragments: the plain one (WebAssembly SIMD) and the FMA one, whose f32x4 multiply-adds are relaxed SIMD's
 * `f32x4.relaxed_madd` (one fused instruction where the CPU has FMA: twice the multiply-add rate of a separate
 * multiply and add on most Intel and Apple cores). The FMA module runs wherever WebAssembly has relaxed SIMD: V8 11.4
 * and later (Node 22, VS Code's Electron), and Node 20/21, which have it behind --experimental-wasm-relaxed-simd: this
 * turns the flag on in the running process (V8 reads it at each compilation, on every thread), so no entry point
 * needs to be started with it. LORAKIT_SIMD=plain|fma|auto overrides the choice (auto: FMA where it runs).
 */
import * as v8 from 'node:v8';
import plainBytes from 'lorakit:kernels';
import fmaBytes from 'lorakit:kernels-fma';
import { UserError } from '../core/errors';

/** the V8 flag that turns relaxed SIMD on in Node 20 and 21 */
export const RELAXED_SIMD_FLAG = '--experimental-wasm-relaxed-simd';

export interface KernelChoice {
  /** the FMA module (relaxed SIMD) rather than the plain one */
  fma: boolean;
  bytes: Uint8Array<ArrayBuffer>;
}

let relaxed: boolean | undefined;

/**
 * Whether this process can run the FMA kernels, turning relaxed SIMD on first where Node 20/21 has it behind the
 * flag. Checked once, by validating the FMA module itself.
 */
export function relaxedSimd(): boolean {
  if (relaxed === undefined) {
    relaxed = WebAssembly.validate(fmaBytes);
    if (!relaxed && Number(process.versions.node.split('.')[0]) < 22) {
      try {
        v8.setFlagsFromString(RELAXED_SIMD_FLAG);
        relaxed = WebAssembly.validate(fmaBytes);
      } catch {
        relaxed = false;
      }
    }
  }
  return relaxed;
}

/** LORAKIT_SIMD: true for fma, false for plain, undefined for auto (or unset) */
export function simdEnv(): boolean | undefined {
  const v = (process.env.LORAKIT_SIMD ?? '').trim().toLowerCase();
  if (v === '' || v === 'auto') return undefined;
  if (v === 'fma') return true;
  if (v === 'plain') return false;
  throw new UserError(`LORAKIT_SIMD is "${process.env.LORAKIT_SIMD}": use plain, fma or auto`);
}

/**
 * The kernels to run: `fma` true or false forces one (true throws where relaxed SIMD is missing), undefined takes
 * LORAKIT_SIMD, and then FMA where it runs. (`supported` is asked only when FMA is wanted; tests stand in for it.)
 */
export function chooseKernels(fma: boolean | undefined = simdEnv(), supported: () => boolean = relaxedSimd): KernelChoice {
  if (fma === false) return { fma: false, bytes: plainBytes };
  if (supported()) return { fma: true, bytes: fmaBytes };
  if (fma)
    throw new UserError(
      `the FMA kernels need WebAssembly relaxed SIMD, which this JavaScript engine lacks (Node ${process.versions.node}, V8 ${process.versions.v8}); ` +
        'unset LORAKIT_SIMD (or set it to plain) to run the plain SIMD kernels',
    );
  return { fma: false, bytes: plainBytes };
}

/** how `lorakit info` and the backend's name describe a choice */
export const simdName = (fma: boolean): string => (fma ? 'relaxed (FMA)' : 'plain');

/** the CPU kernels this process would run, without starting them */
export function cpuKernels(): { fma: boolean; simd: string } {
  const { fma } = chooseKernels();
  return { fma, simd: simdName(fma) };
}
