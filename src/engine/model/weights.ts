/** Loading a Hugging Face Llama-family model folder onto a backend, with every tensor's shape checked. */
import { Backend, Tensor } from '../backend/backend';
import { UserError } from '../errors';
import { ModelSpec, loadSpec } from '../formats/config';
import { TensorStore } from '../formats/safetensors';
import { LINEAR_NAMES, LinearName, modulePath } from '../lora/config';
import { bnbKind, isBnbWeight, readBnbState, readBnbWeight } from '../quant/bnb';
import { QuantConfig, quantizeWeight } from '../quant/weight';
import { isQuantizable } from '../quant/quantize';
import { TORCH_DTYPE, toF32 } from '../formats/dtype';
import { readJson } from '../util/fsx';
import * as path from 'node:path';

export interface LinearWeights {
  w: Tensor; // (out, in)
  b?: Tensor; // (out)
}

export interface LayerWeights {
  inNorm: Tensor; // (C)
  postNorm: Tensor; // (C)
  qNorm?: Tensor; // (D) qwen3
  kNorm?: Tensor; // (D) qwen3
  lin: Record<LinearName, LinearWeights>;
}

export interface ModelWeights {
  embed: Tensor; // (V, C)
  layers: LayerWeights[];
  norm: Tensor; // (C)
  lmHead: Tensor; // (V, C); the embedding table itself when tied
}

/** [out, in] of each linear */
export function linearShape(spec: ModelSpec, name: LinearName): [number, number] {
  const { hidden: C, intermediate: FF, heads: H, kvHeads: KV, headDim: D } = spec;
  switch (name) {
    case 'q_proj':
      return [H * D, C];
    case 'k_proj':
    case 'v_proj':
      return [KV * D, C];
    case 'o_proj':
      return [C, H * D];
    case 'gate_proj':
    case 'up_proj':
      return [FF, C];
    case 'down_proj':
      return [C, FF];
  }
}

export function hasBias(spec: ModelSpec, name: LinearName): boolean {
  if (name === 'q_proj' || name === 'k_proj' || name === 'v_proj') return spec.qkvBias;
  if (name === 'o_proj') return spec.oBias;
  return spec.mlpBias;
}

/** Every tensor the spec needs, name → shape (the tied lm_head excluded). */
export function expectedTensors(spec: ModelSpec): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const { hidden: C, vocabSize: V, headDim: D } = spec;
  m.set('model.embed_tokens.weight', [V, C]);
  for (let l = 0; l < spec.layers; l++) {
    m.set(`model.layers.${l}.input_layernorm.weight`, [C]);
    m.set(`model.layers.${l}.post_attention_layernorm.weight`, [C]);
    if (spec.qkNorm) {
      m.set(`model.layers.${l}.self_attn.q_norm.weight`, [D]);
      m.set(`model.layers.${l}.self_attn.k_norm.weight`, [D]);
    }
    for (const n of LINEAR_NAMES) {
      const [o, i] = linearShape(spec, n);
      m.set(`${modulePath(l, n)}.weight`, [o, i]);
      if (hasBias(spec, n)) m.set(`${modulePath(l, n)}.bias`, [o]);
    }
  }
  m.set('model.norm.weight', [C]);
  if (!spec.tieEmbeddings) m.set('lm_head.weight', [V, C]);
  return m;
}

export interface LoadedModel {
  spec: ModelSpec;
  weights: ModelWeights;
  dir: string;
  /** how the decoder's linear weights are held: quantized on load, read pre-quantized (bnb-4bit), or as stored */
  quant: QuantConfig | null;
  quantSource: 'on load' | 'bnb-4bit' | null;
}

/**
 * The quantization a model folder stores (bnb-4bit), checked against what the user asked for: `--quant` on a
 * pre-quantized base must name the stored type (or be left out).
 */
export function storedQuant(dir: string, store: TensorStore, spec: ModelSpec, asked?: QuantConfig | null): QuantConfig | null {
  const kind = bnbKind(readJson(path.join(dir, 'config.json')));
  if (kind === '8bit') throw new UserError('8-bit bitsandbytes models are not supported; use the full-precision original (optionally with --quant nf4)', dir);
  if (!kind) return null;
  const first = `${modulePath(0, 'q_proj')}.weight`;
  if (spec.layers === 0 || !isBnbWeight(store, first)) throw new UserError(`config.json has a bitsandbytes quantization_config but "${first}" is not in the bnb 4-bit layout`, dir);
  const q = readBnbState(store, first); // the quantization only: the weight itself is read when the model loads
  const cfg: QuantConfig = { type: q.type, blocksize: q.blocksize, doubleQuant: q.nested };
  if (asked && asked.type !== cfg.type)
    throw new UserError(`the model is stored quantized as ${cfg.type}; pass --quant ${cfg.type} or leave --quant out`, dir);
  return cfg;
}

/** The quantization a run on this folder gets: the stored one (bnb-4bit), else what was asked for. Reads headers only. */
export function quantFor(dir: string, asked: QuantConfig | null | undefined): QuantConfig | null {
  return storedQuant(dir, new TensorStore(dir), loadSpec(dir), asked) ?? asked ?? null;
}

export function loadModel(dir: string, be: Backend, quant: QuantConfig | null = null): LoadedModel {
  const spec = loadSpec(dir);
  const store = new TensorStore(dir);
  const stored = storedQuant(dir, store, spec, quant);
  // A checkpoint that ties embeddings may still carry lm_head; one that doesn't tie must.
  if (!spec.tieEmbeddings && !store.has('lm_head.weight'))
    throw new UserError('config says tie_word_embeddings is false but the model has no lm_head.weight', dir);
  const want = expectedTensors(spec);
  for (const [name, shape] of want) {
    if (!store.has(name)) throw new UserError(`the model has no tensor "${name}" (expected by config.json)`, dir);
    if (stored && isQuantizable(name)) continue; // checked against quant_state's shape when read
    const info = store.info(name);
    if (info.shape.join(',') !== shape.join(','))
      throw new UserError(`tensor "${name}" has shape [${info.shape}], config.json implies [${shape}]`, info.file);
  }
  // matrices keep their stored precision where the backend can use it; norms and biases are small: f32
  const get = (name: string) => {
    const shape = want.get(name)!;
    if (shape.length !== 2) return be.upload(store.readF32(name), shape, 'weights');
    if (stored && isQuantizable(name)) {
      if (!isBnbWeight(store, name)) throw new UserError(`"${name}" is not in the bnb 4-bit layout, unlike the rest of the model`, store.info(name).file);
      const q = readBnbWeight(store, name);
      if (q.shape.join(',') !== shape.join(',')) throw new UserError(`"${name}" quant_state shape [${q.shape}], config.json implies [${shape}]`, store.info(name).file);
      return be.uploadQuantized(q);
    }
    if (quant && isQuantizable(name)) {
      const t = store.read(name);
      return be.uploadQuantized(quantizeWeight(toF32(t.dtype, t.data), shape, quant, TORCH_DTYPE[t.dtype] ?? 'float32'));
    }
    return be.uploadWeight(store.read(name), shape);
  };
  const embed = get('model.embed_tokens.weight');
  const layers: LayerWeights[] = [];
  for (let l = 0; l < spec.layers; l++) {
    const lin = {} as Record<LinearName, LinearWeights>;
    for (const n of LINEAR_NAMES) {
      const p = modulePath(l, n);
      lin[n] = { w: get(`${p}.weight`), b: hasBias(spec, n) ? get(`${p}.bias`) : undefined };
    }
    layers.push({
      inNorm: get(`model.layers.${l}.input_layernorm.weight`),
      postNorm: get(`model.layers.${l}.post_attention_layernorm.weight`),
      qNorm: spec.qkNorm ? get(`model.layers.${l}.self_attn.q_norm.weight`) : undefined,
      kNorm: spec.qkNorm ? get(`model.layers.${l}.self_attn.k_norm.weight`) : undefined,
      lin,
    });
  }
  const norm = get('model.norm.weight');
  const lmHead = spec.tieEmbeddings ? embed : get('lm_head.weight');
  return { spec, weights: { embed, layers, norm, lmHead }, dir, quant: stored ?? quant, quantSource: stored ? 'bnb-4bit' : quant ? 'on load' : null };
}
