/** Loading a Hugging Face Llama-family model folder onto a backend, with every tensor's shape checked. */
import { Backend, Tensor } from '../core/backend';
import { UserError } from '../core/errors';
import { QuantConfig, quantizeWeight } from '../core/qweight';
import { TORCH_DTYPE, toF32 } from '../core/dtype';
import type { ModelSpec } from '../formats/config';
import type { ModelFolder } from '../formats/model-folder';
import { isBnbWeight, readBnbWeight } from '../formats/bnb';
import { LINEAR_NAMES, LinearName, expectedTensors, hasBias, isQuantizable, modulePath } from '../formats/structure';

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

export interface LoadedModel {
  spec: ModelSpec;
  weights: ModelWeights;
  dir: string;
  /** how the decoder's linear weights are held: quantized on load, read pre-quantized (bnb-4bit), or as stored */
  quant: QuantConfig | null;
  quantSource: 'on load' | 'bnb-4bit' | null;
}

/**
 * Load an opened model folder onto a backend. Its decoder's linear weights are held in 4 bits when the folder stores
 * them so (bnb-4bit) or the folder was opened with a quantization to apply on load.
 */
export function loadModel(folder: ModelFolder, be: Backend): LoadedModel {
  const { dir, spec, store } = folder;
  const stored = folder.quantSource === 'bnb-4bit' ? folder.quant : null;
  const quant = folder.quant;
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
      if (!isBnbWeight(store, name))
        throw new UserError(`"${name}" is not in the bnb 4-bit layout, unlike the rest of the model`, store.info(name).file);
      const q = readBnbWeight(store, name);
      if (q.shape.join(',') !== shape.join(','))
        throw new UserError(`"${name}" quant_state shape [${q.shape}], config.json implies [${shape}]`, store.info(name).file);
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
  return { spec, weights: { embed, layers, norm, lmHead }, dir, quant, quantSource: folder.quantSource };
}
