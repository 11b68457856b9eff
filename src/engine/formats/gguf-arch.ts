/**
 * A Llama-family model as llama.cpp names it: the GGUF architecture (llama, qwen2, qwen3), its hyperparameter
 * keys, the tensor names (`blk.N.attn_q.weight` …), and the row order llama.cpp's converter gives q and k for
 * the llama architecture (its RoPE rotates adjacent pairs, Hugging Face's rotates halves).
 */
import { UserError } from '../core/errors';
import type { ModelSpec } from './config';
import { KvValue, f32, str, u32 } from './gguf';
import type { LinearName } from './structure';

export type GgufArch = 'llama' | 'qwen2' | 'qwen3';

/** llama.cpp's architecture for a model type (mistral is converted as llama, as convert_hf_to_gguf.py does) */
export function ggufArch(spec: ModelSpec): GgufArch {
  return spec.modelType === 'mistral' ? 'llama' : spec.modelType;
}

const LINEAR_GGUF: Record<LinearName, string> = {
  q_proj: 'attn_q',
  k_proj: 'attn_k',
  v_proj: 'attn_v',
  o_proj: 'attn_output',
  gate_proj: 'ffn_gate',
  up_proj: 'ffn_up',
  down_proj: 'ffn_down',
};

/** llama.cpp's name of a linear module's weight: `blk.3.attn_q.weight` */
export function ggufLinearName(layer: number, name: LinearName): string {
  return `blk.${layer}.${LINEAR_GGUF[name]}.weight`;
}

/** llama.cpp's name of a Hugging Face tensor, or undefined for a name it has no place for */
export function ggufTensorName(hf: string): string | undefined {
  if (hf === 'model.embed_tokens.weight') return 'token_embd.weight';
  if (hf === 'model.norm.weight') return 'output_norm.weight';
  if (hf === 'lm_head.weight') return 'output.weight';
  const m =
    /^model\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.(weight|bias)$/.exec(hf) ?? /^model\.layers\.(\d+)\.(\w+)\.(weight)$/.exec(hf);
  if (!m) return undefined;
  const [, layer, mod, kind] = m;
  const g =
    LINEAR_GGUF[mod as LinearName] ??
    { input_layernorm: 'attn_norm', post_attention_layernorm: 'ffn_norm', q_norm: 'attn_q_norm', k_norm: 'attn_k_norm' }[mod];
  return g ? `blk.${layer}.${g}.${kind}` : undefined;
}

/**
 * How many heads' rows a tensor's rows are permuted over for llama.cpp's llama architecture (q: the heads, k:
 * the key/value heads), or 0 when they stay as stored. qwen2 and qwen3 use llama.cpp's NeoX RoPE, which rotates
 * halves as Hugging Face does, so their rows are never permuted.
 */
export function permuteHeads(spec: ModelSpec, hfName: string): number {
  if (ggufArch(spec) !== 'llama') return 0;
  if (/\.q_proj\.(weight|bias)$/.test(hfName)) return spec.heads;
  if (/\.k_proj\.(weight|bias)$/.test(hfName)) return spec.kvHeads;
  return 0;
}

/**
 * Reorder the rows of a [heads·D, cols] matrix (or a [heads·D] bias, cols = 1) from halves to pairs within each
 * head: row h·D + 2i + j of the result is row h·D + j·D/2 + i of `x`.
 */
export function permuteRows(x: Float32Array, heads: number, cols: number): Float32Array {
  const rows = x.length / cols;
  const D = rows / heads;
  const half = D / 2;
  const out = new Float32Array(x.length);
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < half; i++)
      for (let j = 0; j < 2; j++) {
        const src = (h * D + j * half + i) * cols;
        out.set(x.subarray(src, src + cols), (h * D + 2 * i + j) * cols);
      }
  return out;
}

/**
 * The architecture's hyperparameters (convert_hf_to_gguf.py's keys), and for llama3 RoPE scaling the per-frequency
 * factors llama.cpp reads from a `rope_freqs.weight` tensor instead of from keys.
 */
export function archMetadata(spec: ModelSpec, file: string): { kv: [string, KvValue][]; ropeFreqs?: Float32Array } {
  const a = ggufArch(spec);
  const kv: [string, KvValue][] = [
    [`${a}.context_length`, u32(spec.maxPositions)],
    [`${a}.embedding_length`, u32(spec.hidden)],
    [`${a}.block_count`, u32(spec.layers)],
    [`${a}.feed_forward_length`, u32(spec.intermediate)],
    [`${a}.attention.head_count`, u32(spec.heads)],
    [`${a}.attention.head_count_kv`, u32(spec.kvHeads)],
    [`${a}.attention.key_length`, u32(spec.headDim)],
    [`${a}.attention.value_length`, u32(spec.headDim)],
    [`${a}.rope.freq_base`, f32(spec.rope.theta)],
    [`${a}.attention.layer_norm_rms_epsilon`, f32(spec.rmsEps)],
  ];
  if (a === 'llama') kv.push([`${a}.vocab_size`, u32(spec.vocabSize)], [`${a}.rope.dimension_count`, u32(spec.headDim)]);
  if (spec.slidingWindow !== undefined && spec.slidingWindow < spec.maxPositions)
    throw new UserError(
      `sliding-window attention (${spec.slidingWindow} tokens) has no place in llama.cpp's ${a} architecture: the GGUF would attend further back than the model does`,
      file,
    );
  const s = spec.rope.scaling;
  if (s?.type === 'linear') kv.push([`${a}.rope.scaling.type`, str('linear')], [`${a}.rope.scaling.factor`, f32(s.factor)]);
  if (s?.type !== 'llama3') return { kv };
  if (a !== 'llama') throw new UserError(`llama3 RoPE scaling on a ${a} model cannot be written for llama.cpp`, file);
  // the same smoothing as the engine's rope.ts, as factors that divide each frequency
  const D = spec.headDim;
  const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositions / s.highFreqFactor;
  const ropeFreqs = new Float32Array(D / 2);
  for (let i = 0; i < D / 2; i++) {
    const wavelen = (2 * Math.PI) / spec.rope.theta ** ((2 * i) / D);
    if (wavelen < highWavelen) ropeFreqs[i] = 1;
    else if (wavelen > lowWavelen) ropeFreqs[i] = s.factor;
    else {
      const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      ropeFreqs[i] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return { kv, ropeFreqs };
}
