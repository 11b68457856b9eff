/**
 * train.py, as the exported job writes it: transformers' Trainer + PEFT (+ bitsandbytes for QLoRA) with every
 * value of the lorakit run written in as a literal, each commented with the lorakit flag it comes from. The test
 * reads the calls' keyword arguments back with Python's ast (test/unit/export-job.test.ts).
 */
import type { QuantConfig } from '../core/qweight';
import type { TrainConfig } from '../config';
import { VERSION } from '../core/version';

/** what the exported files are written from: the resolved run and what lorakit derives from it */
export interface JobPlan {
  cfg: TrainConfig;
  /** the base model's folder, absolute */
  model: string;
  modelType: string;
  /** the decoder layer's class in transformers, for FSDP's wrap policy */
  layerClass: string;
  /** the LoRA target modules by name (all-linear spelt out) */
  targets: string[];
  quant: QuantConfig | null;
  /** the model folder stores bnb-4bit weights (transformers reads them as stored) */
  quantStored: boolean;
  trainWindows: number;
  evalWindows: number;
  totalSteps: number;
  warmupSteps: number;
  evalEvery: number;
  /** GPUs per machine and machines, for the accelerate configs' defaults */
  gpus: number;
  nodes: number;
}

/** a value as a Python literal */
export function py(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(v).replace(/^(-?\d+)e/, '$1.0e');
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(py).join(', ')}]`;
  throw new Error(`no Python literal for ${JSON.stringify(v)}`);
}

export const SCHEDULER: Record<TrainConfig['schedule'], string> = {
  cosine: 'cosine',
  linear: 'linear',
  constant: 'constant_with_warmup',
};

function quantBlock(p: JobPlan): { imports: string; load: string; prepare: string } {
  const q = p.quant;
  if (!q) return { imports: '', load: '', prepare: '' };
  const prepare = `
    # QLoRA's usual preparation: norms and embeddings in float32, inputs that carry gradients to the adapters
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=${py(!!p.cfg.gradCheckpoint)})`;
  if (p.quantStored)
    return {
      imports: '\nfrom peft import prepare_model_for_kbit_training',
      load: `
    # the model folder stores its linear weights in bnb-4bit (${q.type}, double quantization ${q.doubleQuant}, blocks of ${q.blocksize}):
    # transformers reads them as stored, from config.json's quantization_config
    quant = None`,
      prepare,
    };
  const note =
    q.blocksize === 64
      ? '# --blocksize 64: bitsandbytes quantizes in blocks of 64 when transformers loads a model'
      : `# --blocksize ${q.blocksize} cannot be set here: transformers' BitsAndBytesConfig has no block size and bitsandbytes
    # quantizes in blocks of 64 when transformers loads a model (README.md, "What differs")`;
  return {
    imports: '\nfrom peft import prepare_model_for_kbit_training\nfrom transformers import BitsAndBytesConfig',
    load: `
    # QLoRA: the decoder's linear weights held in 4 bits, quantized as the model loads
    ${note}
    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=${py(q.type)},  # --quant
        bnb_4bit_use_double_quant=${py(q.doubleQuant)},  # --double-quant (8-bit scales in blocks of 256, as lorakit's)
        bnb_4bit_compute_dtype=dtype,
        # FSDP can only shard the 4-bit weights when they are stored in the compute dtype
        bnb_4bit_quant_storage=dtype if fsdp else torch.uint8,
    )`,
    prepare,
  };
}

export function trainScript(p: JobPlan): string {
  const c = p.cfg;
  const q = quantBlock(p);
  const hasEval = p.evalWindows > 0;
  const epochs = c.steps !== undefined ? `--steps ${c.steps}` : `--epochs ${c.epochs ?? 1} over ${p.trainWindows} training windows`;
  return `#!/usr/bin/env python3
"""
The LoRA run lorakit exported, for transformers' Trainer and PEFT: one GPU, several, or several machines.

Written by \`lorakit export job\` (lorakit ${VERSION}) for the ${p.modelType} model in
  ${p.model}
with ${p.trainWindows} training and ${p.evalWindows} eval windows of ${c.seqLen} tokens (data/train.jsonl, data/eval.jsonl).

  one GPU (or the CPU):  python train.py
  several GPUs:          accelerate launch --config_file accelerate_ddp.yaml train.py

The adapter lands in output/adapter (or --out DIR/adapter): an ordinary PEFT adapter, which lorakit's info, eval
and merge take as it is. README.md maps every setting and lists what differs from \`lorakit train\`.
"""

import argparse
import json
import math
import os
import time

import torch
from peft import LoraConfig, get_peft_model${q.imports}
from torch.utils.data import Dataset, Sampler
from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

from lorakit_order import window_order

HERE = os.path.dirname(os.path.abspath(__file__))

# The run as lorakit resolved it (the other values are written into the calls below, each with its flag).
MODEL = ${py(p.model)}  # --model: this folder, a copy of it, or the same model's Hub id (see --model)
SEQ_LEN = ${c.seqLen}  # --seq-len: tokens each window predicts (a row holds one more token: the first input)
BATCH = ${c.batch}  # --batch: windows per micro-batch
GRAD_ACCUM = ${c.gradAccum}  # --grad-accum: micro-batches per optimizer step
TOTAL_STEPS = ${p.totalSteps}  # ${epochs}
SEED = ${c.seed}  # --seed
SEQUENTIAL = ${c.dataOrder === 'sequential' ? 'True' : 'False'}  # --data-order
QLORA = ${py(!!p.quant)}  # --quant ${p.quant ? p.quant.type + (p.quantStored ? ' (stored bnb-4bit weights)' : '') : 'none'}: the decoder's linear weights in 4 bits


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=MODEL, help="the base model: a folder or a Hub id (default: %(default)s)")
    p.add_argument("--data", default=os.path.join(HERE, "data"), help="the folder holding train.jsonl and eval.jsonl")
    p.add_argument("--out", default=os.path.join(HERE, "output"), help="the run folder: checkpoints/, adapter/, run.json")
    p.add_argument("--cpu", action="store_true", help="train on the CPU in float32 even where there is a GPU")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in OUT/checkpoints")
    return p.parse_args()


class Windows(Dataset):
    """lorakit's windows, one JSONL row each: input_ids and labels (-100 where nothing is scored)."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.rows = [json.loads(line) for line in f if line.strip()]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


def collate(rows):
    """Pad on the right: no earlier position attends to the padding, and padding is never scored."""
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[i, :n] = torch.tensor(r["input_ids"])
        labels[i, :n] = torch.tensor(r["labels"])
        mask[i, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


class LorakitOrder(Sampler):
    """The whole run's windows in lorakit's order: one pass over this sampler is the run's TOTAL_STEPS steps."""

    def __init__(self, n):
        self.order = window_order(n, SEED, TOTAL_STEPS * BATCH * GRAD_ACCUM, SEQUENTIAL)

    def __len__(self):
        return len(self.order)

    def __iter__(self):
        return iter(self.order)


class JobTrainer(Trainer):
    """Trainer, with lorakit's window order instead of a fresh random permutation per epoch."""

    def _get_train_sampler(self, *args, **kwargs):
        return LorakitOrder(len(self.train_dataset))


def split_batch(world):
    """The micro-batch and accumulation of each process, so that a step still takes BATCH * GRAD_ACCUM windows."""
    total = BATCH * GRAD_ACCUM
    if total % world:
        raise SystemExit(
            f"train.py: {world} processes cannot share a step of {total} windows (--batch {BATCH} x --grad-accum {GRAD_ACCUM});"
            f" launch a number of processes that divides {total}, or export the job again with another --batch or --grad-accum"
        )
    per_process = total // world
    accum = next(a for a in range(1, per_process + 1) if per_process % a == 0 and per_process // a <= BATCH)
    return per_process // accum, accum


def write_atomic(path, text):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def write_run_files(args, trainer, started, backend):
    """run.json and metrics.jsonl as lorakit writes them, so lorakit and its Adapters view read this run folder."""
    with open(os.path.join(HERE, "job.json"), encoding="utf-8") as f:
        job = json.load(f)
    history = trainer.state.log_history
    steps = [
        {"step": h["step"], "total_steps": TOTAL_STEPS, "loss": h["loss"], "lr": h.get("learning_rate", 0.0), "grad_norm": h.get("grad_norm", 0.0)}
        for h in history
        if "loss" in h
    ]
    evals = [{"step": h["step"], "eval_loss": h["eval_loss"], "eval_perplexity": math.exp(h["eval_loss"])} for h in history if "eval_loss" in h]
    rows = sorted(steps + evals, key=lambda r: (r["step"], "eval_loss" in r))
    write_atomic(os.path.join(args.out, "metrics.jsonl"), "".join(json.dumps(r) + "\\n" for r in rows))
    run = {
        "config": job["config"],
        "trainer": "transformers",
        "backend": backend,
        "model": {"dir": args.model},
        "data": job["data"],
        "totalSteps": TOTAL_STEPS,
        "warmupSteps": job["warmupSteps"],
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "status": "completed",
        "steps": trainer.state.global_step,
        "finalLoss": steps[-1]["loss"] if steps else None,
        "finalEvalLoss": evals[-1]["eval_loss"] if evals else None,
    }
    write_atomic(os.path.join(args.out, "run.json"), json.dumps(run, indent=2) + "\\n")


def main():
    args = parse_args()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    world = int(os.environ.get("WORLD_SIZE", "1"))
    micro, accum = split_batch(world)
    fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    on_gpu = torch.cuda.is_available() and not args.cpu
    # lorakit computes in float32; on a GPU with bfloat16 the weights and activations are bfloat16 here
    bf16 = on_gpu and torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float32${q.load || '\n    quant = None  # no QLoRA: the base in full precision'}
    model = AutoModelForCausalLM.from_pretrained(
        args.model,
        torch_dtype=dtype,
        quantization_config=quant,
        # a 4-bit model sits whole on each process's GPU (DDP); FSDP places the shards itself
        device_map={"": int(os.environ.get("LOCAL_RANK", "0"))} if (QLORA and on_gpu and not fsdp) else None,
    )
    model.config.use_cache = False  # no KV cache while training${q.prepare}

    lora = LoraConfig(
        r=${c.lora.r},  # --rank
        lora_alpha=${py(c.lora.alpha)},  # --alpha
        lora_dropout=${py(c.lora.dropout)},  # --dropout
        target_modules=${py(p.targets)},  # --targets ${typeof c.lora.targetModules === 'string' ? c.lora.targetModules : c.lora.targetModules.join(',')}
        use_rslora=${py(c.lora.useRslora)},  # --rslora: scale by alpha / sqrt(r) instead of alpha / r
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    model.print_trainable_parameters()

    train_data = Windows(os.path.join(args.data, "train.jsonl"))
    eval_data = ${hasEval ? 'Windows(os.path.join(args.data, "eval.jsonl"))' : 'None  # --eval-split 0: no held-out windows'}
    targs = TrainingArguments(
        output_dir=os.path.join(args.out, "checkpoints"),
        max_steps=TOTAL_STEPS,  # ${epochs}
        per_device_train_batch_size=micro,  # --batch, shared out over the processes (split_batch)
        per_device_eval_batch_size=BATCH,  # lorakit evaluates in batches of --batch too
        gradient_accumulation_steps=accum,  # --grad-accum, shared out over the processes
        learning_rate=${py(c.lr)},  # --lr
        lr_scheduler_type=${py(SCHEDULER[c.schedule])},  # --schedule ${c.schedule}
        warmup_steps=${p.warmupSteps},  # --warmup ${c.warmup}${c.warmup < 1 ? ` of ${p.totalSteps} steps, rounded up` : ''}
        weight_decay=${py(c.weightDecay)},  # --weight-decay (AdamW's decoupled decay, on every LoRA matrix)
        max_grad_norm=${py(c.maxGradNorm)},  # --max-grad-norm (0: no clipping)
        optim="adamw_torch",  # lorakit's AdamW: betas 0.9 and 0.999, eps 1e-8
        adam_beta1=0.9,
        adam_beta2=0.999,
        adam_epsilon=1e-8,
        eval_strategy=${hasEval ? '"steps"' : '"no"'},
        eval_steps=${p.evalEvery},  # --eval-every (default: five times a run)
        save_strategy="steps",
        save_steps=${c.checkpointEvery ?? p.totalSteps},  # --checkpoint-every
        save_total_limit=${c.keepCheckpoints},  # --keep-checkpoints
        gradient_checkpointing=${py(!!c.gradCheckpoint)},  # --grad-checkpoint
        gradient_checkpointing_kwargs={"use_reentrant": False},
        seed=SEED,  # --seed: the adapter's initialization and dropout (torch's generator, not lorakit's)
        data_seed=SEED,
        bf16=bf16,
        use_cpu=not on_gpu,
        average_tokens_across_devices=True,  # the loss of a step: its summed token losses over all its scored tokens
        logging_steps=1,
        remove_unused_columns=False,  # the rows are already model inputs
        report_to="none",
    )
    trainer = JobTrainer(model=model, args=targs, train_dataset=train_data, eval_dataset=eval_data, data_collator=collate)
    if eval_data is not None and not args.resume:
        trainer.evaluate()  # lorakit evaluates before the first step too
    trainer.train(resume_from_checkpoint=True if args.resume else None)
    if trainer.is_fsdp_enabled:
        # gather the sharded adapter on the main process so that it saves as one ordinary PEFT adapter
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(os.path.join(args.out, "adapter"))
    if trainer.is_world_process_zero():
        device = torch.cuda.get_device_name(0) if on_gpu else "cpu"
        write_run_files(args, trainer, started, f"transformers on {world} process(es), {device}")
        print(f"adapter written to {os.path.join(args.out, 'adapter')}")


if __name__ == "__main__":
    main()
`;
}
