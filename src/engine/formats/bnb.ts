/**
 * The Hugging Face bitsandbytes 4-bit layout. For a quantized linear weight P = `<module>.weight`:
 *   P                                  uint8 [⌈n/2⌉, 1]   packed codes
 *   P.absmax                           f32 [blocks], or uint8 [blocks] when double-quantized
 *   P.quant_map                        f32 [16]
 *   P.nested_absmax, P.nested_quant_map  f32 [⌈blocks/256⌉], f32 [256]   (double quantization only)
 *   P.quant_state.bitsandbytes__<type>   uint8: the bytes of Python's json.dumps of
 *                                        {quant_type, blocksize, dtype, shape[, nested_blocksize, nested_dtype, nested_offset]}
 * and config.json gains `quantization_config`.
 */
import { DType } from '../core/dtype';
import { HostTensor, TensorStore, TensorToWrite } from './safetensors';
import { UserError } from '../core/errors';
import { QUANT_TYPES, QuantType, checkBlocksize, codeTable } from '../core/blockwise';
import { QuantConfig, QuantWeight, TorchDtype, blocksOf, numelOf } from '../core/qweight';

const STATE = 'quant_state.bitsandbytes__';

/** Python's repr() of a float: shortest round-trip digits, exponent form below 1e-4 and from 1e16 */
export function pyFloat(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'NaN' : x > 0 ? 'Infinity' : '-Infinity'; // json.dumps' spelling
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mant, e] = x.toExponential().split('e');
  const exp = Number(e);
  const digits = mant.replace('-', '').replace('.', '');
  const sign = x < 0 ? '-' : '';
  if (exp < -4 || exp >= 16)
    return `${sign}${digits[0]}${digits.length > 1 ? '.' + digits.slice(1) : ''}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  const int = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
  const frac = digits.slice(exp + 1);
  return `${sign}${int}.${frac || '0'}`;
}

/** the quant_state JSON exactly as bitsandbytes writes it (json.dumps, default separators) */
export function quantStateJson(q: QuantWeight): string {
  const parts = [`"quant_type": "${q.type}"`, `"blocksize": ${q.blocksize}`, `"dtype": "${q.dtype}"`, `"shape": [${q.shape.join(', ')}]`];
  if (q.nested)
    parts.push(`"nested_blocksize": ${q.nested.blocksize}`, `"nested_dtype": "float32"`, `"nested_offset": ${pyFloat(q.nested.offset)}`);
  return `{${parts.join(', ')}}`;
}

/** the tensors that stand for one quantized weight named `name` */
export function bnbTensors(name: string, q: QuantWeight): TensorToWrite[] {
  const state = Buffer.from(quantStateJson(q), 'utf8');
  const out: TensorToWrite[] = [{ name, dtype: 'U8', shape: [q.packed.length, 1], data: q.packed }];
  if (q.nested) {
    out.push(
      { name: `${name}.absmax`, dtype: 'U8', shape: [q.nested.codes.length], data: q.nested.codes },
      { name: `${name}.nested_absmax`, dtype: 'F32', shape: [q.nested.absmax.length], data: q.nested.absmax },
      { name: `${name}.nested_quant_map`, dtype: 'F32', shape: [256], data: q.nested.map },
    );
  } else out.push({ name: `${name}.absmax`, dtype: 'F32', shape: [q.absmax!.length], data: q.absmax! });
  out.push({ name: `${name}.quant_map`, dtype: 'F32', shape: [16], data: codeTable(q.type) });
  out.push({ name: `${name}.${STATE}${q.type}`, dtype: 'U8', shape: [state.length], data: new Uint8Array(state) });
  return out;
}

/** the names of the tensors beside P that belong to its quantization */
export const bnbPartNames = (name: string): string[] =>
  ['absmax', 'quant_map', 'nested_absmax', 'nested_quant_map', ...QUANT_TYPES.map((t) => STATE + t)].map((s) => `${name}.${s}`);

/** The `quantization_config` transformers writes for a 4-bit bitsandbytes model. */
export function quantizationConfig(cfg: QuantConfig, computeDtype: TorchDtype): Record<string, unknown> {
  return {
    quant_method: 'bitsandbytes',
    _load_in_8bit: false,
    _load_in_4bit: true,
    llm_int8_threshold: 6.0,
    llm_int8_skip_modules: null,
    llm_int8_enable_fp32_cpu_offload: false,
    llm_int8_has_fp16_weight: false,
    bnb_4bit_quant_type: cfg.type,
    bnb_4bit_use_double_quant: cfg.doubleQuant,
    bnb_4bit_compute_dtype: computeDtype,
    bnb_4bit_quant_storage: 'uint8',
    load_in_4bit: true,
    load_in_8bit: false,
  };
}

/** Whether a config.json describes a bitsandbytes-quantized model (4-bit, or 8-bit which lorakit refuses). */
export function bnbKind(config: Record<string, any>): '4bit' | '8bit' | null {
  const q = config.quantization_config;
  if (!q || typeof q !== 'object') return null;
  if (q.quant_method !== 'bitsandbytes') return null;
  if (q.load_in_8bit || q._load_in_8bit) return '8bit';
  return '4bit';
}

/** Does the store hold P in the bnb layout? (P is uint8 and has a quant_state beside it) */
export function isBnbWeight(store: TensorStore, name: string): boolean {
  if (!store.has(name) || store.info(name).dtype !== 'U8') return false;
  return QUANT_TYPES.some((t) => store.has(`${name}.${STATE}${t}`)) || hasUnknownState(store, name) !== null;
}
function hasUnknownState(store: TensorStore, name: string): string | null {
  const prefix = `${name}.${STATE}`;
  return store.names().find((n) => n.startsWith(prefix) && !QUANT_TYPES.includes(n.slice(prefix.length) as QuantType)) ?? null;
}

const f32Of = (t: HostTensor, what: string, file: string): Float32Array => {
  if (t.dtype !== 'F32') throw new UserError(`${what} must be F32, is ${t.dtype}`, file);
  return t.data as Float32Array;
};

/** P's quant_state, checked (its type against the tensor's name, block size, shape, dtype): no weight data is read */
export function readBnbState(store: TensorStore, name: string) {
  const file = store.info(name).file;
  const bad = (msg: string) => new UserError(`${name}: ${msg}`, file);
  const unknown = hasUnknownState(store, name);
  if (unknown) throw bad(`unknown quant_type "${unknown.slice(`${name}.${STATE}`.length)}" (lorakit reads nf4 and fp4)`);
  const states = QUANT_TYPES.filter((t) => store.has(`${name}.${STATE}${t}`));
  if (states.length !== 1)
    throw bad(states.length ? 'more than one quant_state' : 'no quant_state.bitsandbytes__nf4/fp4 beside the packed weight');
  const stateT = store.read(`${name}.${STATE}${states[0]}`);
  let st: any;
  try {
    st = JSON.parse(Buffer.from(stateT.data.buffer, stateT.data.byteOffset, stateT.data.byteLength).toString('utf8'));
  } catch {
    throw bad('quant_state is not JSON');
  }
  if (st.quant_type !== states[0]) throw bad(`quant_state says quant_type "${st.quant_type}" but is stored as bitsandbytes__${states[0]}`);
  const blocksize = Number(st.blocksize);
  checkBlocksize(blocksize, `${name}: quant_state blocksize`);
  if (!Array.isArray(st.shape) || !st.shape.every((d: unknown) => Number.isInteger(d) && (d as number) > 0))
    throw bad('quant_state has no valid shape');
  const dtype = st.dtype as TorchDtype;
  if (!['float32', 'float16', 'bfloat16'].includes(dtype)) throw bad(`quant_state dtype "${st.dtype}" is not float32, float16 or bfloat16`);
  return { type: states[0], blocksize, shape: st.shape as number[], dtype, nested: store.has(`${name}.nested_absmax`), st, file, bad };
}

/**
 * Read P in the bnb layout, checking every part against the others: the codes' length against the shape, the
 * absmax count against the blocks, the nested parts, the code map against the named type.
 */
export function readBnbWeight(store: TensorStore, name: string): QuantWeight {
  const { type, blocksize, shape, dtype, nested, st, file, bad } = readBnbState(store, name);
  const packedT = store.read(name);
  if (packedT.dtype !== 'U8') throw bad(`packed weight must be U8, is ${packedT.dtype}`);
  const q: QuantWeight = { type, blocksize, shape, dtype, packed: packedT.data as Uint8Array };
  const n = numelOf(q);
  if (q.packed.length !== Math.ceil(n / 2))
    throw bad(`quant_state shape [${st.shape}] needs ${Math.ceil(n / 2)} packed bytes, the tensor has ${q.packed.length}`);
  const map = store.has(`${name}.quant_map`) ? f32Of(store.read(`${name}.quant_map`), `${name}.quant_map`, file) : null;
  const table = codeTable(q.type);
  if (map && (map.length !== 16 || map.some((v, i) => v !== table[i]))) throw bad(`quant_map is not the ${q.type} code table`);
  if (!store.has(`${name}.absmax`)) throw bad('no absmax');
  const absT = store.read(`${name}.absmax`);
  const blocks = blocksOf(q);
  if (absT.data.length !== blocks) throw bad(`absmax has ${absT.data.length} values, ${blocks} blocks of ${blocksize} need ${blocks}`);
  if (!nested) {
    q.absmax = f32Of(absT, `${name}.absmax`, file);
    return q;
  }
  if (absT.dtype !== ('U8' as DType)) throw bad(`double-quantized absmax must be U8, is ${absT.dtype}`);
  const nb = Number(st.nested_blocksize);
  if (!Number.isInteger(nb) || nb <= 0) throw bad('quant_state has no valid nested_blocksize');
  if (typeof st.nested_offset !== 'number') throw bad('quant_state has no nested_offset');
  if (!Number.isFinite(Math.fround(st.nested_offset))) throw bad(`quant_state nested_offset ${st.nested_offset} is not a finite float32`);
  const nabs = f32Of(store.read(`${name}.nested_absmax`), `${name}.nested_absmax`, file);
  if (nabs.length !== Math.ceil(blocks / nb)) throw bad(`nested_absmax has ${nabs.length} values, ${Math.ceil(blocks / nb)} expected`);
  if (!store.has(`${name}.nested_quant_map`)) throw bad('no nested_quant_map');
  const nmap = f32Of(store.read(`${name}.nested_quant_map`), `${name}.nested_quant_map`, file);
  if (nmap.length !== 256) throw bad(`nested_quant_map has ${nmap.length} values, 256 expected`);
  q.nested = { codes: absT.data as Uint8Array, absmax: nabs, map: nmap, offset: Math.fround(st.nested_offset), blocksize: nb };
  return q;
}
