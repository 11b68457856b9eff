/** Hugging Face `config.json` → the model spec the engine runs. */
import * as path from 'node:path';
import { UserError } from '../core/errors';
import { readJson } from '../core/fsx';

export const SUPPORTED_MODEL_TYPES = ['llama', 'mistral', 'qwen2', 'qwen3'] as const;

export interface RopeSpec {
  theta: number;
  /** `llama3` frequency smoothing, or `linear` position interpolation; absent for plain RoPE */
  scaling?:
    | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number }
    | { type: 'linear'; factor: number };
}

export interface ModelSpec {
  modelType: (typeof SUPPORTED_MODEL_TYPES)[number];
  vocabSize: number;
  hidden: number; // C
  intermediate: number; // FF
  layers: number; // L
  heads: number; // H
  kvHeads: number; // KV
  headDim: number; // D
  rmsEps: number;
  rope: RopeSpec;
  maxPositions: number;
  tieEmbeddings: boolean;
  /** bias on q/k/v (qwen2, or llama's attention_bias) */
  qkvBias: boolean;
  /** bias on o_proj (llama's attention_bias) */
  oBias: boolean;
  /** bias on gate/up/down (llama's mlp_bias) */
  mlpBias: boolean;
  /** RMSNorm over each head of q and k before RoPE (qwen3) */
  qkNorm: boolean;
  /** tokens further back than this are masked (mistral); undefined for full causal attention */
  slidingWindow?: number;
  torchDtype?: string;
  bosTokenId?: number;
  eosTokenId?: number | number[];
}

export function loadSpec(dir: string): ModelSpec {
  const file = path.join(dir, 'config.json');
  return parseSpec(readJson(file), file);
}

export function parseSpec(c: any, file = 'config.json'): ModelSpec {
  const mt = c?.model_type;
  if (!SUPPORTED_MODEL_TYPES.includes(mt))
    throw new UserError(
      `model_type ${JSON.stringify(mt)} is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`,
      file,
    );
  const int = (key: string, fallback?: number): number => {
    const v = c[key] ?? fallback;
    if (!Number.isSafeInteger(v) || v <= 0) throw new UserError(`"${key}" must be a positive integer, got ${JSON.stringify(c[key])}`, file);
    return v;
  };
  const hidden = int('hidden_size');
  const heads = int('num_attention_heads');
  const kvHeads = int('num_key_value_heads', heads);
  const headDim = c.head_dim != null ? int('head_dim') : hidden / heads;
  if (!Number.isInteger(headDim)) throw new UserError(`hidden_size ${hidden} is not a multiple of num_attention_heads ${heads}`, file);
  if (heads % kvHeads !== 0) throw new UserError(`num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`, file);
  if (headDim % 2 !== 0) throw new UserError(`head dimension ${headDim} must be even for RoPE`, file);
  const hiddenAct = c.hidden_act ?? 'silu';
  if (hiddenAct !== 'silu' && hiddenAct !== 'swish') throw new UserError(`hidden_act "${hiddenAct}" is not supported (only silu)`, file);
  const attentionBias = c.attention_bias === true;
  let slidingWindow: number | undefined;
  if (mt === 'mistral' && Number.isSafeInteger(c.sliding_window)) slidingWindow = c.sliding_window;
  if ((mt === 'qwen2' || mt === 'qwen3') && c.use_sliding_window === true && Number.isSafeInteger(c.sliding_window))
    slidingWindow = c.sliding_window;
  return {
    modelType: mt,
    vocabSize: int('vocab_size'),
    hidden,
    intermediate: int('intermediate_size'),
    layers: int('num_hidden_layers'),
    heads,
    kvHeads,
    headDim,
    rmsEps: typeof c.rms_norm_eps === 'number' ? c.rms_norm_eps : 1e-6,
    rope: parseRope(c, file),
    maxPositions: c.max_position_embeddings ?? 2048,
    tieEmbeddings: c.tie_word_embeddings ?? false, // the default of every supported architecture
    qkvBias: mt === 'qwen2' || attentionBias,
    oBias: mt !== 'qwen2' && attentionBias,
    mlpBias: c.mlp_bias === true,
    qkNorm: mt === 'qwen3',
    slidingWindow,
    torchDtype: c.torch_dtype ?? c.dtype,
    bosTokenId: c.bos_token_id ?? undefined,
    eosTokenId: c.eos_token_id ?? undefined,
  };
}

/**
 * RoPE settings: transformers ≤ 4 writes `rope_theta` and `rope_scaling`; transformers 5 writes `rope_parameters`
 * ({rope_type, rope_theta, …}, or one such object per attention type).
 */
function parseRope(c: any, file: string): RopeSpec {
  let rp = c.rope_parameters;
  if (rp && typeof rp === 'object' && !('rope_type' in rp) && !('rope_theta' in rp)) rp = rp.full_attention ?? Object.values(rp)[0];
  const theta = c.rope_theta ?? rp?.rope_theta ?? 10000;
  if (!(typeof theta === 'number' && theta > 0)) throw new UserError(`rope_theta must be a positive number, got ${JSON.stringify(theta)}`, file);
  const rs = c.rope_scaling ?? rp;
  if (rs == null) return { theta };
  const type = rs.rope_type ?? rs.type;
  if (type === undefined || type === 'default') return { theta };
  if (type === 'llama3')
    return {
      theta,
      scaling: {
        type,
        factor: rs.factor,
        lowFreqFactor: rs.low_freq_factor,
        highFreqFactor: rs.high_freq_factor,
        originalMaxPositions: rs.original_max_position_embeddings,
      },
    };
  if (type === 'linear') return { theta, scaling: { type, factor: rs.factor } };
  throw new UserError(`rope_scaling type ${JSON.stringify(type)} is not supported (supported: llama3, linear)`, file);
}

/** Which token ids end a sequence, as a list. */
export function eosIds(spec: ModelSpec): number[] {
  const e = spec.eosTokenId;
  return e == null ? [] : Array.isArray(e) ? e : [e];
}
