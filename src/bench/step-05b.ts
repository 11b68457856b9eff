/**
 * Workload (b): one LoRA training step at Qwen2.5-0.5B's shape (bf16 safetensors, seq 128 × batch 1, LoRA r=16 on
 * all 7 linear projections of every layer, AdamW): lorakit's step (the reference workload's lorakitStep, in a
 * process of its own) and bench/torch_step.py at the same shape with every PyTorch found, f32 in PyTorch.
 */
import * as os from 'node:os';
import { W } from '../bench-step';
import { formatBytes, estimateMemory } from '../engine/tasks/estimate';
import { defaultLoraConfig } from '../engine/formats/lora-config';
import { loadSpec } from '../engine/formats/config';
import { IsolatedRun, isolatedStep } from './child';
import { QWEN05, QwenModels } from './qwen05';
import { TorchRun, TorchSkip, isRun, peerLong, torchRuns, trainableNote } from './torch';

/** timed steps (after 2 warm-up steps); BENCH_STEPS overrides */
export const STEPS_05B = Number(process.env.BENCH_STEPS ?? 5);
const SEQ = 128;
const BATCH = 1;
/** a PyTorch whose first step takes longer is skipped (Debian's, on the reference BLAS, would take many minutes) */
const MAX_FIRST_STEP_S = 60;

export interface Step05b {
  markdown: string;
  lorakit: IsolatedRun;
  torch: (TorchRun | TorchSkip)[];
}

export function step05bSection(qwen: QwenModels): Step05b {
  const dir = qwen.bf16();
  const spec = loadSpec(dir);
  const est = estimateMemory({ spec, lora: defaultLoraConfig({ r: W.rank, dropout: 0 }), seqLen: SEQ, batch: BATCH, quant: null });
  const run = isolatedStep(dir, null, STEPS_05B, { seq: SEQ, batch: BATCH, vocab: spec.vocabSize });
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
  console.log(
    `step 0.5B: lorakit ${run.backend}: ${run.tokensPerS.toFixed(1)} tok/s, ${run.stepMs.toFixed(0)} ms/step, peak RSS ${gib(run.maxRss)}, tracker peak ${gib(run.peak.total)}`,
  );
  const o = QWEN05;
  const torch = torchRuns(
    {
      vocab: o.configVocab!,
      hidden: o.hidden!,
      ff: o.intermediate!,
      layers: o.layers!,
      heads: o.heads!,
      kv: o.kvHeads!,
      seq: SEQ,
      batch: BATCH,
      rank: W.rank,
      steps: STEPS_05B,
      threads: os.availableParallelism(),
      extra: ['--qkv-bias', '--tied', '--rope-theta', String(o.ropeTheta)],
      maxFirstStepS: MAX_FIRST_STEP_S,
    },
    'step 0.5B',
  );
  const rows = torch.map((t) =>
    isRun(t)
      ? `| ${peerLong(t.peer)}, ${t.threads} threads | ${t.dtype === 'float32' ? 'f32' : t.dtype} | ${t.tokens_per_s.toFixed(1)} | ${t.step_ms.toFixed(0)} ms | ${t.best_tokens_per_s.toFixed(1)} | ${gib(t.max_rss)} | ${(run.tokensPerS / t.tokens_per_s).toFixed(2)}× |`
      : `| ${peerLong(t.peer)} | f32 | ${t.skipped} | | | | |`,
  );
  const markdown = `## Workload (b): a training step at Qwen2.5-0.5B's shape

Qwen2.5-0.5B's shape, ${(est.params.base / 1e6).toFixed(0)}M parameters (hidden ${o.hidden}, MLP ${o.intermediate}, ${o.layers} layers, ${o.heads} heads / ${o.kvHeads} KV heads of ${o.hidden! / o.heads!}, vocab ${o.configVocab}, tied embeddings, q/k/v biases), random weights; LoRA r=${W.rank} on all 7 linear projections of every layer (${est.params.trainable.toLocaleString('en')} trainable), seq ${SEQ} × batch ${BATCH}: one optimizer step = forward + backward + AdamW. lorakit reads the bf16 safetensors folder and holds the weights in bf16 (the gemm widens them while packing); PyTorch (bench/torch_step.py, the same model written out in PyTorch) holds them in f32. Median of ${STEPS_05B} steps after 2 warm-up steps (BENCH_STEPS sets the count); a PyTorch whose first step takes over ${MAX_FIRST_STEP_S} s is skipped. Each engine runs in a process of its own; peak RSS is that process's high-water mark (getrusage), model set-up included.

| engine | weights | tokens/s (median) | step (median) | tokens/s (best step) | peak RSS | lorakit ÷ this |
|---|---|---|---|---|---|---|
| lorakit ${run.backend} | bf16 | ${run.tokensPerS.toFixed(1)} | ${run.stepMs.toFixed(0)} ms | ${run.bestTokensPerS.toFixed(1)} | ${gib(run.maxRss)} | 1.00× |
${rows.join('\n') || '| PyTorch | not available (no python3 with torch) | | | | | |'}

${trainableNote(torch, est.params.trainable)}lorakit's memory tracker at its peak: ${formatBytes(run.peak.total)} (weights ${formatBytes(run.peak.weights)}, LoRA ${formatBytes(run.peak.lora)}, optimizer ${formatBytes(run.peak.optimizer)}, activations ${formatBytes(run.peak.activations)}, workspace ${formatBytes(run.peak.workspace)}); the estimate before loading said ${formatBytes(est.bytes.total)}.
`;
  return { markdown, lorakit: run, torch };
}
