/** `lorakit train`: its flags and help come from the engine's one table of training settings (engine/config.ts). */
import * as path from 'node:path';
import { FieldName, TRAIN_FIELDS, TrainSettingsInput, fieldHelp, formatBytes, formatDuration, resolveTrainConfig, train } from '../engine';
import { Command, FlagSpec, err, need, out, parseFlags } from './args';

const LORA: FieldName[] = ['rank', 'alpha', 'dropout', 'targets', 'rslora', 'initAdapter'];
const QUANT: FieldName[] = ['quant', 'doubleQuant', 'blocksize'];
const SCHEDULE: FieldName[] = ['seqLen', 'batch', 'gradAccum', 'lr', 'steps', 'epochs', 'warmup', 'schedule', 'weightDecay', 'maxGradNorm'];
const RUN: FieldName[] = [
  'evalSplit',
  'evalEvery',
  'dataOrder',
  'seed',
  'checkpointEvery',
  'keepCheckpoints',
  'gradCheckpoint',
  'maxMemory',
];
const DEVICE: FieldName[] = ['backend', 'device', 'pagedOptimizer'];

/** the parser's spec for some of the table's fields */
export function fieldFlags(names: readonly FieldName[]): FlagSpec {
  const spec: FlagSpec = {};
  for (const k of names) {
    const f = TRAIN_FIELDS[k];
    spec[f.flag] = f.kind === 'boolean' ? 'boolean' : f.kind === 'string' ? 'string' : 'number';
  }
  return spec;
}

/** the table's fields as given on the command line, keyed by field */
export function fieldValues(p: Record<string, unknown>, names: readonly FieldName[]): Partial<TrainSettingsInput> {
  const out: Record<string, unknown> = {};
  for (const k of names) if (p[TRAIN_FIELDS[k].flag] !== undefined) out[k] = p[TRAIN_FIELDS[k].flag];
  return out as Partial<TrainSettingsInput>;
}

const ALL = [...LORA, ...QUANT, ...SCHEDULE, ...RUN, ...DEVICE];

export const trainCmd: Command = {
  help: `lorakit train --model DIR --data PATH [options]

  --model DIR                    a Hugging Face model folder (config.json, *.safetensors, tokenizer.json)
  --data PATH                    a folder (honours .gitignore), a .txt/.md file, or .jsonl (text | prompt+completion | messages | input_ids)
  --out DIR                      run folder (default runs/<time>): run.json, metrics.jsonl, checkpoints/, adapter/
  --resume                       continue the run in --out from its last checkpoint
  --json                         print the result as one JSON object
LoRA:
${fieldHelp(LORA)}
QLoRA (a bnb-4bit model folder is read as stored; --quant may then be left out):
${fieldHelp(QUANT)}
Schedule:
${fieldHelp(SCHEDULE)}
Run:
${fieldHelp(RUN)}
Device:
${fieldHelp(DEVICE)}
`,
  async run(argv) {
    const p = parseFlags(argv, { ...fieldFlags(ALL), model: 'string', data: 'string', out: 'string', resume: 'boolean', json: 'boolean' });
    const cfg = resolveTrainConfig({
      ...fieldValues(p, ALL),
      model: need<string>(p, 'model'),
      data: need<string>(p, 'data'),
      out: (p.out as string) ?? path.join('runs', new Date().toISOString().replace(/[:.]/g, '-')),
    });
    const ac = new AbortController();
    const onSig = () => {
      err('stopping after this step (checkpoint will be kept)…');
      ac.abort();
    };
    process.once('SIGINT', onSig);
    process.once('SIGTERM', onSig);
    const r = await train(cfg, {
      resume: !!p.resume,
      signal: ac.signal,
      events: {
        onLog: (l) => err(l),
        onStep: (m) => {
          const eta = ((m.total_steps - m.step) * m.step_ms) / 1000;
          err(
            `step ${m.step}/${m.total_steps}  loss ${m.loss.toFixed(4)}  lr ${m.lr.toExponential(2)}  grad_norm ${m.grad_norm.toFixed(3)}  ${m.tokens_per_s.toFixed(0)} tok/s  peak ${formatBytes(m.mem.total)}  ETA ${formatDuration(eta)}`,
          );
        },
        onEval: (m) =>
          err(`eval @ step ${m.step}: loss ${m.eval_loss.toFixed(4)}  ppl ${m.eval_perplexity.toFixed(2)}  (${m.eval_tokens} tokens)`),
        onCheckpoint: (d) => err(`checkpoint: ${d}`),
      },
    });
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
    if (p.json) out(JSON.stringify(r));
    else {
      out(`${r.status}: ${r.steps} steps on ${r.backend}`);
      out(
        `train loss ${r.firstLoss?.toFixed(4)} → ${r.finalLoss?.toFixed(4)}` +
          (r.firstEvalLoss !== undefined ? `; eval loss ${r.firstEvalLoss.toFixed(4)} → ${r.finalEvalLoss?.toFixed(4)}` : ''),
      );
      out(`peak memory ${formatBytes(r.peakMem.total)}; run folder ${r.runDir}`);
      if (r.adapterDir) out(`adapter: ${r.adapterDir}`);
      else out(`last checkpoint: ${r.lastCheckpoint} (continue with --resume)`);
    }
    if (r.status === 'cancelled') process.exitCode = 130;
  },
};

export { LORA as LORA_FIELDS, QUANT as QUANT_FIELDS, SCHEDULE as SCHEDULE_FIELDS, RUN as RUN_FIELDS };
