/** Loading a Hugging Face Llama-family model folder onto a backend, with every tensor's shape checked. */
import { Backend, Tensor } from '../backend/backend';
import { UserError } from '../errors';
import { ModelSpec, loadSpec } from '../formats/config';
import { TensorStore } from '../formats/safetensors';
import { LINEAR_NAMES, LinearName, modulePath } from '../lora/config';

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
}

export function loadModel(dir: string, be: Backend): LoadedModel {
  const spec = loadSpec(dir);
  const store = new TensorStore(dir);
  // A checkpoint that ties embeddings may still carry lm_head; one that doesn't tie must.
  if (!spec.tieEmbeddings && !store.has('lm_head.weight'))
    throw new UserError('config says tie_word_embeddings is false but the model has no lm_head.weight', dir);
  const want = expectedTensors(spec);
  for (const [name, shape] of want) {
    if (!store.has(name)) throw new UserError(`the model has no tensor "${name}" (expected by config.json)`, dir);
    const info = store.info(name);
    if (info.shape.join(',') !== shape.join(','))
      throw new UserError(`tensor "${name}" has shape [${info.shape}], config.json implies [${shape}]`, info.file);
  }
  // matrices keep their stored precision where the backend can use it; norms and biases are small: f32
  const get = (name: string) => {
    const shape = want.get(name)!;
    return shape.length === 2 ? be.uploadWeight(store.read(name), shape) : be.upload(store.readF32(name), shape, 'weights');
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
  return { spec, weights: { embed, layers, norm, lmHead }, dir };
}
