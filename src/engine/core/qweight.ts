/** A frozen weight matrix held as 4-bit codes plus its scales (plain f32 or double-quantized). */
import { UserError } from './errors';
import type { TorchDtype } from './dtype';
import { NestedAbsmax, QuantType, checkBlocksize, dequantize4bit, doubleQuantize, nestedToAbsmax, quantize4bit } from './blockwise';

/** what the user asks for: `--quant nf4|fp4 [--double-quant] [--blocksize 64]` */
export interface QuantConfig {
  type: QuantType;
  blocksize: number;
  doubleQuant: boolean;
}

/** the element type the weight had before quantizing, in torch's words (bnb's quant_state `dtype`) */
export type { TorchDtype } from './dtype';

export interface QuantWeight {
  type: QuantType;
  blocksize: number;
  shape: number[];
  dtype: TorchDtype;
  /** ⌈n/2⌉ bytes, element 2j in the high nibble */
  packed: Uint8Array;
  /** f32 scales per block (without double quantization) */
  absmax?: Float32Array;
  /** double-quantized scales */
  nested?: NestedAbsmax;
}

export function quantizeWeight(x: Float32Array, shape: number[], cfg: QuantConfig, dtype: TorchDtype): QuantWeight {
  checkBlocksize(cfg.blocksize);
  const { packed, absmax } = quantize4bit(x, cfg.blocksize, cfg.type);
  const q: QuantWeight = { type: cfg.type, blocksize: cfg.blocksize, shape, dtype, packed };
  if (cfg.doubleQuant) q.nested = doubleQuantize(absmax);
  else q.absmax = absmax;
  return q;
}

export const numelOf = (q: QuantWeight) => q.shape.reduce((a, b) => a * b, 1);
export const blocksOf = (q: QuantWeight) => Math.ceil(numelOf(q) / q.blocksize);

/** the f32 scale of every block (decoding double quantization) */
export function scalesOf(q: QuantWeight): Float32Array {
  if (q.absmax) return q.absmax;
  if (q.nested) return nestedToAbsmax(q.nested);
  throw new UserError('a quantized weight has neither absmax nor nested absmax');
}

export function dequantizeWeight(q: QuantWeight): Float32Array {
  return dequantize4bit(q.packed, scalesOf(q), q.blocksize, q.type, numelOf(q));
}

/** bytes held: codes, scales and the nested scales, map and offset */
export function quantBytes(q: QuantWeight): number {
  let b = q.packed.byteLength + 16 * 4; // + the 16-value code map
  if (q.absmax) b += q.absmax.byteLength;
  if (q.nested) b += q.nested.codes.byteLength + q.nested.absmax.byteLength + q.nested.map.byteLength + 4;
  return b;
}

/**
 * Bytes of one quantized (out, in) matrix, from its shape alone: the estimator's count and the figure the
 * bench checks held bytes against.
 */
export function quantBytesFor(n: number, cfg: QuantConfig): number {
  const blocks = Math.ceil(n / cfg.blocksize);
  let b = Math.ceil(n / 2) + 16 * 4;
  if (cfg.doubleQuant) b += blocks + Math.ceil(blocks / 256) * 4 + 256 * 4 + 4;
  else b += blocks * 4;
  return b;
}

/** stored bits per parameter of the codes and scales (the QLoRA paper's 4.127 for NF4 + DQ at block 64) */
export function bitsPerParam(cfg: QuantConfig): number {
  const scale = cfg.doubleQuant ? 8 / cfg.blocksize + 32 / (cfg.blocksize * 256) : 32 / cfg.blocksize;
  return 4 + scale;
}
