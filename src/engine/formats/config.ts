/** Hugging Face `config.json` → the model spec the engine runs. */
import * as path from 'node:path';
import { z } from 'zod';
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

/** config.json's fields are written by Python, so each is checked for its type and range before it is used */
const MAX_DIM = 2 ** 31 - 1; // sizes and token ids are stored as int32 further on
const posInt = z
  .int({ error: 'must be a positive integer' })
  .min(1, { error: 'must be a positive integer' })
  .max(MAX_DIM, { error: `must be at most ${MAX_DIM}` });
const posNum = z.number({ error: 'must be a positive number' }).positive({ error: 'must be a positive number' });
const bool = z.boolean({ error: 'must be true or false (a JSON boolean, not a string)' });
const tokenId = z.int({ error: 'must be a token id (an integer ≥ 0)' }).min(0, { error: 'must be a token id (an integer ≥ 0)' });
const str = z.string({ error: 'must be a string' });
const obj = z.record(z.string(), z.unknown(), { error: 'must be an object' });

// null is how Python writes None: every optional field may be null, meaning "the default"
const ConfigSchema = z.object({
  vocab_size: posInt,
  hidden_size: posInt,
  intermediate_size: posInt,
  num_hidden_layers: posInt,
  num_attention_heads: posInt,
  num_key_value_heads: posInt.nullish(),
  head_dim: posInt.nullish(),
  max_position_embeddings: posInt.nullish(),
  rms_norm_eps: posNum.nullish(),
  hidden_act: str.nullish(),
  tie_word_embeddings: bool.nullish(),
  attention_bias: bool.nullish(),
  mlp_bias: bool.nullish(),
  use_sliding_window: bool.nullish(),
  sliding_window: posInt.nullish(),
  rope_theta: posNum.nullish(),
  rope_scaling: obj.nullish(),
  rope_parameters: obj.nullish(),
  torch_dtype: str.nullish(),
  dtype: str.nullish(),
  bos_token_id: tokenId.nullish(),
  eos_token_id: z.union([tokenId, z.array(tokenId)], { error: 'must be a token id or a list of token ids' }).nullish(),
});

const Llama3Schema = z
  .object({ factor: posNum, low_freq_factor: posNum, high_freq_factor: posNum, original_max_position_embeddings: posInt })
  // the smoothing between the two wavelengths divides by their difference
  .refine((r) => r.high_freq_factor > r.low_freq_factor, { error: 'must be larger than low_freq_factor', path: ['high_freq_factor'] });
const LinearSchema = z.object({ factor: posNum });

/** A value for a message: short and on one line. */
function shown(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** zod's first complaint as one line naming the field: `"rms_norm_eps" must be a positive number, got -1` */
function fieldError(err: z.ZodError, input: unknown, file: string, prefix = ''): UserError {
  const issue = err.issues[0];
  const at = prefix + issue.path.map(String).join('.');
  const value = issue.path.reduce((o: any, k) => (o != null && typeof o === 'object' && Object.hasOwn(o, k) ? o[k] : undefined), input);
  return new UserError(`"${at}" ${issue.message}, ${value === undefined ? 'but it is missing' : `got ${shown(value)}`}`, file);
}

function validate<T>(schema: z.ZodType<T>, input: unknown, file: string, prefix = ''): T {
  const r = schema.safeParse(input);
  if (!r.success) throw fieldError(r.error, input, file, prefix);
  return r.data;
}

export function parseSpec(raw: any, file = 'config.json'): ModelSpec {
  const mt = raw?.model_type;
  if (!SUPPORTED_MODEL_TYPES.includes(mt))
    throw new UserError(`model_type ${JSON.stringify(mt)} is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`, file);
  const c = validate(ConfigSchema, raw, file);
  const hidden = c.hidden_size;
  const heads = c.num_attention_heads;
  const kvHeads = c.num_key_value_heads ?? heads;
  const headDim = c.head_dim ?? hidden / heads;
  if (!Number.isInteger(headDim)) throw new UserError(`hidden_size ${hidden} is not a multiple of num_attention_heads ${heads}`, file);
  if (heads % kvHeads !== 0) throw new UserError(`num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`, file);
  if (headDim % 2 !== 0) throw new UserError(`head dimension ${headDim} must be even for RoPE`, file);
  const hiddenAct = c.hidden_act ?? 'silu';
  if (hiddenAct !== 'silu' && hiddenAct !== 'swish') throw new UserError(`hidden_act "${hiddenAct}" is not supported (only silu)`, file);
  const vocabSize = c.vocab_size;
  const ids: [string, number | null | undefined][] = [
    ['bos_token_id', c.bos_token_id],
    ...eosList(c.eos_token_id).map((e): [string, number] => ['eos_token_id', e]),
  ];
  for (const [key, id] of ids)
    if (id != null && id >= vocabSize) throw new UserError(`"${key}" ${id} is not below vocab_size ${vocabSize}`, file);
  const attentionBias = c.attention_bias === true;
  let slidingWindow: number | undefined;
  if (mt === 'mistral' && c.sliding_window != null) slidingWindow = c.sliding_window;
  if ((mt === 'qwen2' || mt === 'qwen3') && c.use_sliding_window === true && c.sliding_window != null) slidingWindow = c.sliding_window;
  return {
    modelType: mt,
    vocabSize,
    hidden,
    intermediate: c.intermediate_size,
    layers: c.num_hidden_layers,
    heads,
    kvHeads,
    headDim,
    rmsEps: c.rms_norm_eps ?? 1e-6,
    rope: parseRope(c, file),
    maxPositions: c.max_position_embeddings ?? 2048,
    tieEmbeddings: c.tie_word_embeddings ?? false, // the default of every supported architecture
    qkvBias: mt === 'qwen2' || attentionBias,
    oBias: mt !== 'qwen2' && attentionBias,
    mlpBias: c.mlp_bias === true,
    qkNorm: mt === 'qwen3',
    slidingWindow,
    torchDtype: c.torch_dtype ?? c.dtype ?? undefined,
    bosTokenId: c.bos_token_id ?? undefined,
    eosTokenId: c.eos_token_id ?? undefined,
  };
}

/**
 * RoPE settings: transformers ≤ 4 writes `rope_theta` and `rope_scaling`; transformers 5 writes `rope_parameters`
 * ({rope_type, rope_theta, …}, or one such object per attention type).
 */
function parseRope(c: z.infer<typeof ConfigSchema>, file: string): RopeSpec {
  let rp: Record<string, unknown> | undefined = c.rope_parameters ?? undefined;
  let rpName = 'rope_parameters';
  if (rp && !('rope_type' in rp) && !('rope_theta' in rp)) {
    const key = 'full_attention' in rp ? 'full_attention' : Object.keys(rp)[0];
    if (key !== undefined) {
      rpName = `rope_parameters.${key}`;
      rp = validate(obj, rp[key], file, rpName);
    } else rp = undefined;
  }
  const theta = c.rope_theta ?? (rp?.rope_theta != null ? validate(posNum, rp.rope_theta, file, `${rpName}.rope_theta`) : 10000);
  const rs = c.rope_scaling ?? rp;
  if (rs == null) return { theta };
  const name = c.rope_scaling ? 'rope_scaling' : rpName;
  const type = rs.rope_type ?? rs.type;
  if (type === undefined || type === 'default') return { theta };
  if (type === 'llama3') {
    const r = validate(Llama3Schema, rs, file, `${name}.`);
    const scaling = { factor: r.factor, lowFreqFactor: r.low_freq_factor, highFreqFactor: r.high_freq_factor };
    return { theta, scaling: { type, ...scaling, originalMaxPositions: r.original_max_position_embeddings } };
  }
  if (type === 'linear') return { theta, scaling: { type, factor: validate(LinearSchema, rs, file, `${name}.`).factor } };
  throw new UserError(`rope_scaling type ${JSON.stringify(type)} is not supported (supported: llama3, linear)`, file);
}

function eosList(e: number | number[] | null | undefined): number[] {
  return e == null ? [] : Array.isArray(e) ? e : [e];
}

/** Which token ids end a sequence, as a list. */
export function eosIds(spec: ModelSpec): number[] {
  return eosList(spec.eosTokenId);
}
