/**
 * The structure of a Llama-family checkpoint: its linear modules' names, where each sits in the module tree, the
 * shape every tensor must have, and which weights QLoRA quantizes. The model, the LoRA adapter, the PEFT files, the
 * estimate and the 4-bit layout all read these names from here.
 */
import type { ModelSpec } from './config';

export const LINEAR_NAMES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LinearName = (typeof LINEAR_NAMES)[number];

export function modulePath(layer: number, name: LinearName): string {
  const group = name.endsWith('_proj') && ['q_proj', 'k_proj', 'v_proj', 'o_proj'].includes(name) ? 'self_attn' : 'mlp';
  return `model.layers.${layer}.${group}.${name}`;
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

/** a decoder layer's linear weight: what QLoRA quantizes */
export const isQuantizable = (name: string) => /^model\.layers\.\d+\.(self_attn|mlp)\.(q|k|v|o|gate|up|down)_proj\.weight$/.test(name);
