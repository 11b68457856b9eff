/** `lorakit export job`: the run `lorakit train` would make, as a transformers + PEFT job for a cluster. */
import { FieldName, exportJob, fieldHelp, resolveTrainConfig } from '../engine';
import { Command, UsageError, err, need, out, parseFlags } from './args';
import { LORA_FIELDS, QUANT_FIELDS, RUN_FIELDS, SCHEDULE_FIELDS, fieldFlags, fieldValues } from './train';

const JOB_FIELDS: FieldName[] = [...LORA_FIELDS, ...QUANT_FIELDS, ...SCHEDULE_FIELDS, ...RUN_FIELDS];

export const jobCmd: Command = {
  help: `lorakit export job --target hf --model DIR --data PATH --out DIR [train options] [--gpus 8] [--nodes 1] [--json]
  Writes the run that \`lorakit train\` would make with these options as a folder for a cluster: train.py
  (transformers' Trainer + PEFT, + bitsandbytes with --quant), lorakit_order.py, the training and eval windows as
  token JSONL, accelerate configs for DDP and FSDP, job.json and a README with the launch commands.
  --target hf       the only target: Hugging Face transformers + PEFT
  --gpus N          GPUs per machine in the accelerate configs (default 8)
  --nodes N         machines in the accelerate configs (default 1)
  train options: the LoRA, QLoRA, schedule and run options of \`lorakit train\`:
${fieldHelp(JOB_FIELDS)}
`,
  async run(argv) {
    const p = parseFlags(argv, {
      ...fieldFlags(JOB_FIELDS),
      target: 'string',
      model: 'string',
      data: 'string',
      out: 'string',
      gpus: 'number',
      nodes: 'number',
      json: 'boolean',
    });
    const target = need<string>(p, 'target');
    if (target !== 'hf') throw new UsageError(`--target must be hf, got "${target}"`);
    for (const k of ['gpus', 'nodes'])
      if (p[k] !== undefined && !(Number.isInteger(p[k]) && (p[k] as number) >= 1 && (p[k] as number) <= 4096))
        throw new UsageError(`--${k} must be a whole number from 1 to 4096, got ${p[k]}`);
    const cfg = resolveTrainConfig({ ...fieldValues(p, JOB_FIELDS), model: need(p, 'model'), data: need(p, 'data'), out: need(p, 'out') });
    const r = exportJob(cfg, { target, out: cfg.out, gpus: p.gpus as number | undefined, nodes: p.nodes as number | undefined });
    for (const w of r.warnings) err(`warning: ${w}`);
    if (p.json) return void out(JSON.stringify(r));
    out(`wrote ${r.out}: ${r.trainWindows} training and ${r.evalWindows} eval windows, ${r.totalSteps} steps (${r.warmupSteps} warm-up)`);
    out(`  one GPU:      cd ${r.out} && python train.py`);
    out(`  several:      cd ${r.out} && accelerate launch --config_file accelerate_ddp.yaml train.py`);
    out(`  README.md has multi-node launches and how to bring the adapter back`);
  },
};
