/**
 * PEFT adapter folders: adapter_config.json + adapter_model.safetensors with keys
 * `base_model.model.<module path>.lora_A.weight` (r, in) and `….lora_B.weight` (out, r). Read adapters that PEFT
 * wrote, and write ones that PEFT loads unchanged.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Backend, Tensor } from '../core/backend';
import { UserError } from '../core/errors';
import { ModelSpec } from '../formats/config';
import { SafetensorsFile, pickleRefused, writeSafetensors } from '../formats/safetensors';
import { writeDirAtomic } from '../core/fsx';
import { LoraConfig, alphaFor, loraScale } from '../formats/lora-config';
import { readAdapterConfig } from '../formats/lora-config';
import { LoraAdapter, LoraModule } from './lora';
import { linearShape, LINEAR_NAMES, LinearName, modulePath } from '../formats/structure';

const PREFIX = 'base_model.model.';

/** adapter_config.json as PEFT writes it */
export function peftConfigJson(c: LoraConfig, targetNames: string[]): Record<string, unknown> {
  return {
    alpha_pattern: c.alphaPattern ?? {},
    auto_mapping: null,
    base_model_name_or_path: c.baseModel ?? null,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: c.alpha,
    lora_dropout: c.dropout,
    modules_to_save: null,
    peft_type: 'LORA',
    r: c.r,
    rank_pattern: c.rankPattern ?? {},
    revision: null,
    target_modules: targetNames,
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: c.useRslora,
  };
}

/** adapter_model.safetensors and adapter_config.json into an existing folder (checkpoints use it too) */
export function writeAdapterFiles(dir: string, adapter: LoraAdapter, be: Backend): void {
  const tensors = adapter
    .params()
    .map((p) => ({ name: `${PREFIX}${p.name}`, dtype: 'F32' as const, shape: [...p.t.shape], data: be.read(p.t).slice() }));
  writeSafetensors(path.join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' });
  fs.writeFileSync(
    path.join(dir, 'adapter_config.json'),
    JSON.stringify(peftConfigJson(adapter.config, adapter.targetNames()), null, 2) + '\n',
  );
}

export function saveAdapter(dir: string, adapter: LoraAdapter, be: Backend, extraFiles: Record<string, string> = {}, kept?: string): void {
  writeDirAtomic(
    dir,
    (tmp) => {
      writeAdapterFiles(tmp, adapter, be);
      for (const [name, text] of Object.entries(extraFiles)) fs.writeFileSync(path.join(tmp, name), text);
    },
    kept,
  );
}

/** Read the adapter's tensors as host arrays by module path, checked against the model's shapes. */
export function readAdapterTensors(
  dir: string,
  spec: ModelSpec,
): Map<string, { name: LinearName; layer: number; A: Float32Array; B: Float32Array; r: number; inF: number; outF: number }> {
  const file = path.join(dir, 'adapter_model.safetensors');
  if (!fs.existsSync(file)) {
    if (fs.existsSync(path.join(dir, 'adapter_model.bin')))
      throw pickleRefused(path.join(dir, 'adapter_model.bin'), 'save the adapter with safe_serialization=True');
    throw new UserError('no adapter_model.safetensors', dir);
  }
  const st = new SafetensorsFile(file);
  const known = new Map<string, { name: LinearName; layer: number }>();
  for (let l = 0; l < spec.layers; l++) for (const n of LINEAR_NAMES) known.set(modulePath(l, n), { name: n, layer: l });
  const parts = new Map<string, { A?: string; B?: string }>();
  for (const key of st.names()) {
    const m = /^(?:base_model\.model\.)?(.+)\.lora_([AB])(?:\.[A-Za-z0-9_-]+)?\.weight$/.exec(key);
    if (!m) {
      if (/lora_embedding_|lora_magnitude/.test(key))
        throw new UserError(`tensor "${key}" is not supported (only LoRA on linear layers)`, file);
      throw new UserError(`tensor "${key}" is not a LoRA weight`, file);
    }
    const p = parts.get(m[1]) ?? {};
    p[m[2] as 'A' | 'B'] = key;
    parts.set(m[1], p);
  }
  if (parts.size === 0) throw new UserError('the adapter holds no LoRA weights', file);
  const out = new Map<
    string,
    { name: LinearName; layer: number; A: Float32Array; B: Float32Array; r: number; inF: number; outF: number }
  >();
  for (const [mod, p] of parts) {
    const k = known.get(mod);
    if (!k) throw new UserError(`module "${mod}" does not exist in this model (made for another model?)`, file);
    if (!p.A || !p.B) throw new UserError(`module "${mod}" has lora_${p.A ? 'A' : 'B'} but no lora_${p.A ? 'B' : 'A'}`, file);
    const [outF, inF] = linearShape(spec, k.name);
    const a = st.info(p.A).shape;
    const b = st.info(p.B).shape;
    const r = a[0];
    if (a.length !== 2 || a[1] !== inF || b.length !== 2 || b[0] !== outF || b[1] !== r)
      throw new UserError(
        `module "${mod}": lora_A is [${a}] and lora_B is [${b}], but this model needs [r, ${inF}] and [${outF}, r] (made for another model?)`,
        file,
      );
    out.set(mod, { ...k, A: st.readF32(p.A), B: st.readF32(p.B), r, inF, outF });
  }
  return out;
}

export function loadAdapter(dir: string, spec: ModelSpec, be: Backend): LoraAdapter {
  const config = readAdapterConfig(dir);
  const modules = new Map<string, LoraModule>();
  for (const [p, t] of readAdapterTensors(dir, spec)) {
    const A: Tensor = be.upload(t.A, [t.r, t.inF], 'lora');
    const B: Tensor = be.upload(t.B, [t.outF, t.r], 'lora');
    modules.set(p, { path: p, layer: t.layer, name: t.name, r: t.r, scale: loraScale(alphaFor(config, p), t.r, config.useRslora), A, B });
  }
  // keep the module order canonical (layer, then linear name) whatever the file order
  const sorted = new Map(
    [...modules].sort((x, y) => x[1].layer - y[1].layer || LINEAR_NAMES.indexOf(x[1].name) - LINEAR_NAMES.indexOf(y[1].name)),
  );
  return new LoraAdapter(config, sorted);
}
