/** The flags that open a model, shared by the commands that run one: --quant …, --backend. */
import { BackendName, QuantConfig, checkField, resolveTrainConfig } from '../engine';
import { FlagSpec, Parsed } from './args';
import { QUANT_FIELDS, fieldFlags, fieldValues } from './train';

export const QUANT_FLAGS: FlagSpec = fieldFlags(QUANT_FIELDS);

/** --quant none|nf4|fp4 [--double-quant] [--blocksize 64]: null for none (checked against the training table) */
export function quantFrom(p: Parsed, dflt = 'none'): QuantConfig | null {
  const q = resolveTrainConfig({ ...fieldValues({ quant: dflt, ...p }, QUANT_FIELDS), model: '-', data: '-', out: '-' }).quant;
  return q ?? null;
}

export function backendFrom(p: Parsed): BackendName {
  const b = (p.backend as string) ?? 'auto';
  checkField('backend', b);
  return b as BackendName;
}
