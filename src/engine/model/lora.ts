/** A LoRA adapter in memory: per targeted linear, A (r, in) and B (out, r) on the backend, with PEFT's init. */
import { Backend, Tensor } from '../core/backend';
import { ModelSpec } from '../formats/config';
import { ModelWeights } from './weights';
import { Rng } from '../core/rng';
import { LoraConfig, alphaFor, isTarget, loraScale, rankFor } from '../formats/lora-config';
import { linearShape, LINEAR_NAMES, LinearName, modulePath } from '../formats/structure';

export interface LoraModule {
  path: string; // model.layers.3.self_attn.q_proj
  layer: number;
  name: LinearName;
  r: number;
  scale: number;
  A: Tensor; // (r, in)
  B: Tensor; // (out, r)
  dA?: Tensor; // gradients, allocated for training
  dB?: Tensor;
}

export class LoraAdapter {
  constructor(
    readonly config: LoraConfig,
    readonly modules: Map<string, LoraModule>,
  ) {}

  /** A ~ kaiming_uniform(a=√5) = U(−1/√in, 1/√in), B = 0: a fresh adapter changes nothing. */
  static create(spec: ModelSpec, config: LoraConfig, be: Backend, rng: Rng): LoraAdapter {
    const modules = new Map<string, LoraModule>();
    for (let layer = 0; layer < spec.layers; layer++)
      for (const name of LINEAR_NAMES) {
        const path = modulePath(layer, name);
        if (!isTarget(config, path)) continue;
        const [out, inp] = linearShape(spec, name);
        const r = rankFor(config, path);
        const bound = 1 / Math.sqrt(inp);
        const a = new Float32Array(r * inp);
        for (let i = 0; i < a.length; i++) a[i] = rng.uniform(-bound, bound);
        modules.set(path, {
          path,
          layer,
          name,
          r,
          scale: loraScale(alphaFor(config, path), r, config.useRslora),
          A: be.upload(a, [r, inp], 'lora'),
          B: be.zeros([out, r], 'lora'),
        });
      }
    return new LoraAdapter(config, modules);
  }

  /** The trainable tensors in a fixed order: A then B of each module, by layer and module name. */
  params(): { name: string; t: Tensor; g: () => Tensor | undefined }[] {
    const out: { name: string; t: Tensor; g: () => Tensor | undefined }[] = [];
    for (const m of this.modules.values()) {
      out.push({ name: `${m.path}.lora_A.weight`, t: m.A, g: () => m.dA });
      out.push({ name: `${m.path}.lora_B.weight`, t: m.B, g: () => m.dB });
    }
    return out;
  }

  trainableCount(): number {
    let n = 0;
    for (const m of this.modules.values()) n += m.A.shape[0] * m.A.shape[1] + m.B.shape[0] * m.B.shape[1];
    return n;
  }

  /** Short names of the targeted modules, as PEFT writes them into adapter_config.json. */
  targetNames(): string[] {
    return [...new Set([...this.modules.values()].map((m) => m.name))].sort();
  }

  allocGrads(be: Backend): void {
    for (const m of this.modules.values()) {
      m.dA ??= be.zeros([...m.A.shape], 'lora');
      m.dB ??= be.zeros([...m.B.shape], 'lora');
    }
  }

  zeroGrads(be: Backend): void {
    for (const m of this.modules.values()) {
      if (m.dA) be.scaleInPlace(m.dA, 0);
      if (m.dB) be.scaleInPlace(m.dB, 0);
    }
  }

  free(be: Backend): void {
    for (const m of this.modules.values()) be.free(m.A, m.B, m.dA, m.dB);
  }
}

/** W += sign·s·B·A for every module of the adapter, in place on the loaded weights (merge, or unmerge with −1). */
export function mergeInPlace(adapter: LoraAdapter, weights: ModelWeights, be: Backend, sign: 1 | -1): void {
  for (const m of adapter.modules.values()) {
    const lin = weights.layers[m.layer].lin[m.name];
    lin.w = be.toF32(lin.w); // (out, in); a bf16 weight is merged in f32, not rounded back
    be.matmul(m.B, m.A, { alpha: sign * m.scale, out: lin.w, beta: 1 }, 'weights');
  }
}
