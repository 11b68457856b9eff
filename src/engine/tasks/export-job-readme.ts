/** The exported job's README.md: how to launch it, how each lorakit setting maps, what differs, how to bring the adapter back. */
import { VERSION } from '../core/version';
import { JobPlan, SCHEDULER } from './export-job-script';

export function jobReadme(p: JobPlan): string {
  const c = p.cfg;
  const q = p.quant;
  const targets = typeof c.lora.targetModules === 'string' ? c.lora.targetModules : c.lora.targetModules.join(',');
  const rows: [string, string, string][] = [
    ['--model', p.model, '`from_pretrained(MODEL)` (`--model` of train.py overrides)'],
    ['--rank', String(c.lora.r), '`LoraConfig.r`'],
    ['--alpha', String(c.lora.alpha), '`LoraConfig.lora_alpha`'],
    ['--dropout', String(c.lora.dropout), '`LoraConfig.lora_dropout`'],
    ['--targets', targets, `\`LoraConfig.target_modules\` = ${p.targets.join(', ')}`],
    ['--rslora', String(c.lora.useRslora), '`LoraConfig.use_rslora`'],
    ['--seq-len', String(c.seqLen), 'the windows in data/ (rows of at most seq-len + 1 tokens)'],
    ['--batch', String(c.batch), '`per_device_train_batch_size` × processes × `gradient_accumulation_steps` = batch × grad-accum'],
    ['--grad-accum', String(c.gradAccum), '`gradient_accumulation_steps` (divided among the processes)'],
    ['--steps / --epochs', c.steps !== undefined ? `steps ${c.steps}` : `epochs ${c.epochs ?? 1}`, `\`max_steps\` = ${p.totalSteps}`],
    ['--lr', String(c.lr), '`learning_rate`'],
    ['--warmup', String(c.warmup), `\`warmup_steps\` = ${p.warmupSteps}`],
    ['--schedule', c.schedule, `\`lr_scheduler_type\` = ${SCHEDULER[c.schedule]}`],
    ['--weight-decay', String(c.weightDecay), '`weight_decay` (AdamW, `optim="adamw_torch"`, betas 0.9/0.999, eps 1e-8)'],
    ['--max-grad-norm', String(c.maxGradNorm), '`max_grad_norm`'],
    ['--eval-split', String(c.evalSplit), `data/eval.jsonl (${p.evalWindows} window${p.evalWindows === 1 ? '' : 's'}), \`eval_strategy\``],
    ['--eval-every', String(p.evalEvery), '`eval_steps` (and one evaluation before the first step)'],
    ['--seed', String(c.seed), '`seed`, `data_seed`; the window order (lorakit_order.py)'],
    ['--checkpoint-every', String(c.checkpointEvery ?? p.totalSteps), '`save_steps`'],
    ['--keep-checkpoints', String(c.keepCheckpoints), '`save_total_limit`'],
    ['--grad-checkpoint', String(!!c.gradCheckpoint), '`gradient_checkpointing`'],
  ];
  if (q)
    rows.push(
      [
        '--quant',
        q.type,
        p.quantStored ? 'stored bnb-4bit weights, read as stored' : '`BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type)`',
      ],
      ['--double-quant', String(q.doubleQuant), p.quantStored ? '(stored)' : '`bnb_4bit_use_double_quant`'],
      [
        '--blocksize',
        String(q.blocksize),
        q.blocksize === 64 || p.quantStored ? "bitsandbytes' block size" : '**not settable: 64 here** (see below)',
      ],
    );
  const table = ['| lorakit | value | transformers / PEFT |', '|---|---|---|', ...rows.map((r) => `| \`${r[0]}\` | ${r[1]} | ${r[2]} |`)];
  return `# Training job exported by lorakit ${VERSION}

This folder trains the same LoRA adapter as \`lorakit train\` would, with transformers' \`Trainer\` and PEFT${q ? ' (and bitsandbytes for QLoRA)' : ''}, on
one GPU, several, or a cluster. It is self-contained: copy it to the machine that trains, with the base model.

| file | what it holds |
|---|---|
| \`train.py\` | the training script; every setting is written into it, commented with its lorakit flag |
| \`lorakit_order.py\` | lorakit's window order (plain Python), so each step takes the windows lorakit would |
| \`data/train.jsonl\`, \`data/eval.jsonl\` | the ${p.trainWindows} training and ${p.evalWindows} eval windows, as token ids |
| \`accelerate_ddp.yaml\` | data parallel over ${p.gpus} GPU(s) a machine, ${p.nodes} machine(s) |
| \`accelerate_fsdp.yaml\` | the same, sharding the base model (FSDP), for a model too big for one GPU |
| \`job.json\` | the run's settings as lorakit resolved them, and the data's counts |
| \`requirements.txt\` | the Python packages |

## Launch

The base model: train.py loads \`${p.model}\`. On another machine, pass its copy (or the same model's Hub id)
with \`--model PATH\` after \`train.py\`.

\`\`\`sh
pip install -r requirements.txt

# one GPU (or the CPU, slowly; --cpu forces it)
python train.py

# every GPU of this machine, data parallel (set num_processes in the file, or --num_processes N)
accelerate launch --config_file accelerate_ddp.yaml train.py

# every GPU of this machine, the base sharded (FSDP)
accelerate launch --config_file accelerate_fsdp.yaml train.py
\`\`\`

### Several machines

Run the same command on every machine, each with its own \`--machine_rank\` (0 on the main one), and the main
machine's address and port; \`--num_processes\` counts the GPUs of all machines together:

\`\`\`sh
# e.g. 2 machines with 8 GPUs each; on machine 0, then on machine 1 with --machine_rank 1
accelerate launch --config_file accelerate_ddp.yaml --num_machines 2 --num_processes 16 \\
  --machine_rank 0 --main_process_ip 10.0.0.1 --main_process_port 29500 train.py --model /shared/model
\`\`\`

Under Slurm, set \`--machine_rank $SLURM_NODEID\` and the first host of \`$SLURM_JOB_NODELIST\` as the main address.
The data, train.py and the model must be readable on every machine (a shared file system, or a copy on each).

The number of processes must divide batch × grad-accum = ${c.batch * c.gradAccum} windows: train.py then splits each
step's windows over the processes, so a step still takes the same ${c.batch * c.gradAccum} windows whatever the
number of GPUs (it stops with a message otherwise). \`--resume\` continues from the newest checkpoint.

## Bringing the adapter back

train.py writes \`output/\` as a lorakit run folder: \`adapter/\` (an ordinary PEFT adapter: adapter_config.json and
adapter_model.safetensors), \`run.json\`, \`metrics.jsonl\` and the Trainer's \`checkpoints/\`.

\`\`\`sh
lorakit info --model output                  # the run: steps, losses
lorakit info --model output/adapter          # the adapter
lorakit eval --model ${p.model} --adapter output/adapter --data <data>
lorakit merge --model ${p.model} --adapter output/adapter --out merged
\`\`\`

In VS Code, copy \`output/\` into the project as \`.lorakit/runs/<name>/\`: the Adapters view lists it with its losses,
and Activate, Compare and Merge take it like any other.

## The data: tokens, not texts

The JSONL rows are lorakit's training windows as token ids, so the cluster trains on exactly what \`lorakit train\`
would: the same tokenization (lorakit's tokenizer and chat-template rendering), the same end-of-text tokens between
documents, the same packing into windows of ${c.seqLen} predictions, the same loss mask (prompts, system and user
turns unscored) and the same train/eval split. Texts would have to be tokenized, templated, masked and packed again
by other code, which would not give the same windows. Each row is \`{"input_ids": [...], "labels": [...]}\`: the
window's ${c.seqLen} inputs plus the token after them (so all ${c.seqLen} targets are in the row; transformers shifts
labels itself), with labels -100 where nothing is scored. The rows are also valid lorakit data in its input_ids
form, though \`lorakit train\` would pack them into windows again.

## Settings

${table.join('\n')}

## What differs from \`lorakit train\`

- **Initialization, dropout masks.** PEFT draws the LoRA A matrices (the same kaiming-uniform bound) and the dropout
  masks from torch's generator seeded with ${c.seed}; lorakit draws them from its own. Same distributions, other
  numbers: the losses agree in trend, not to the digit.
- **Precision.** lorakit computes in float32. On a GPU with bfloat16, train.py loads the base in bfloat16 and trains
  with bf16 autocast (the LoRA weights stay float32); on the CPU, or with \`--cpu\`, it is float32 throughout.
- **Loss normalization.** lorakit divides each step's summed token losses by the number of scored tokens in the whole
  step (all micro-batches). transformers (≥ 4.48, as requirements.txt asks) does the same when the model takes
  \`num_items_in_batch\` (the Llama family does), and across processes with \`average_tokens_across_devices=True\`,
  which train.py sets. Older versions average the micro-batches' means: steps with uneven masks weigh tokens differently.
- **Eval loss.** lorakit's is the mean over every scored eval token; the Trainer's \`eval_loss\` is the mean of its
  per-batch means, which differs slightly when batches hold different numbers of scored tokens.
- **Window order.** Exact on one process: lorakit_order.py yields lorakit's order. On N processes, step k still takes
  the same windows, shared out by accelerate batch by batch; only which GPU computes which window changes.
- **Padding.** The last window of each split can be short; train.py pads it on the right and masks it, where lorakit
  pads with end-of-text tokens. Nothing before the padding attends to it, so the losses are the same.
${
  q && !p.quantStored
    ? `- **4-bit blocks.** transformers' \`BitsAndBytesConfig\` has no block size: bitsandbytes quantizes in blocks of 64
  when a model loads (128 on ROCm in recent versions), whatever lorakit's \`--blocksize\` (${q.blocksize} here${q.blocksize === 64 ? ', so the same' : ''}). bitsandbytes itself accepts
  other sizes (quantize_4bit), but not through transformers' loading. Double quantization's 8-bit scales use blocks
  of 256 in both. NF4 and FP4 codes are bitsandbytes' own, which lorakit reproduces.
- **QLoRA preparation.** train.py calls PEFT's \`prepare_model_for_kbit_training\`, which holds the norms and the
  embeddings in float32; lorakit holds everything but the 4-bit weights in float32 as well.
`
    : ''
}- **Checkpoints.** The Trainer's checkpoints (\`output/checkpoints/checkpoint-N\`) are its own format; lorakit's
  \`--resume\` cannot continue them (train.py's \`--resume\` can).
`;
}
