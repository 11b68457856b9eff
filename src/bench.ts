/**
 * `npm run bench`: lorakit against every PyTorch on this machine on the two workloads of issue 13 — (a) the
 * reference of DESIGN.md §8 (a 10.5M-parameter Llama, seq 256 × batch 4, LoRA r=16 on every linear layer) and (b)
 * Qwen2.5-0.5B's shape (bf16, seq 128 × batch 1) — then the gemm by shape class against the SIMD peak, QLoRA, the
 * fused 4-bit matmul, decode, WebGPU and tokenizing. Writes docs/BENCHMARKS.md. BENCH_ONLY=matmul|step05b|decode|peers|step
 * prints one section instead (BENCH_STEPS sets the timed steps of both workloads).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { estimateMemory, formatBytes } from './engine/tasks/estimate';
import { TinyModelOptions, makeTinyModel } from './engine/fixtures/model';
import { decodeSection } from './bench/decode';
import { defaultLoraConfig } from './engine/formats/lora-config';
import { MEM_TAGS } from './engine/core/backend';
import { STEPS, W, median } from './bench-step';
import { VERSION } from './engine/core/version';
import { QuantConfig, bitsPerParam } from './engine/core/qweight';
import { loadSpec } from './engine/formats/config';
import { tokenizeBench } from './bench/tokenize';
import { isolatedStep, stepChild } from './bench/child';
import { QwenModels } from './bench/qwen05';
import { matmulSection } from './bench/matmul';
import { qmatmulRows } from './bench/qmatmul';
import { webgpuRows } from './bench/webgpu';
import { step05bSection } from './bench/step-05b';
import { bestRun, findPeers, isRun, peerLong, peerShort, torchRuns, trainableNote } from './bench/torch';
import { pct } from './bench/pct';
import { roundsA, roundsMarkdown } from './bench/rounds';

/** rounds of workload (a), lorakit and the fastest PyTorch alternating (BENCH_ROUNDS) */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

const root = path.resolve(__dirname, '..');

function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${cpu}, ${os.availableParallelism()} cores, ${formatBytes(os.totalmem())} RAM, ${os.platform()} ${os.release()}, Node ${process.version}`;
}

const SECTIONS = ['decode', 'step05b', 'matmul', 'peers', 'step'];

async function main() {
  if (process.argv[2] === '--step-child') return stepChild(process.argv.slice(3));
  if (!(Number.isInteger(ROUNDS) && ROUNDS >= 1)) {
    console.error(`BENCH_ROUNDS=${process.env.BENCH_ROUNDS}: not a whole number of rounds, 1 or more`);
    process.exit(2);
  }
  const only1 = process.env.BENCH_ONLY;
  if (only1 && !SECTIONS.includes(only1)) {
    console.error(`BENCH_ONLY=${only1}: not a section; one of ${SECTIONS.join(', ')}`);
    process.exit(2);
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-bench-'));
  try {
    await bench(tmp);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** one section alone, printed, not written */
async function only(what: string, dir: string, ref: TinyModelOptions, qwen: QwenModels): Promise<void> {
  if (what === 'decode') console.log(await decodeSection(dir, ref, qwen));
  else if (what === 'step05b') console.log(step05bSection(qwen).markdown);
  else if (what === 'matmul') console.log(matmulSection());
  else if (what === 'step') {
    // workload (a) alone, lorakit then each PyTorch, as the full run measures them
    const r = isolatedStep(dir, null, STEPS, { seq: W.seq, batch: W.batch });
    console.log(`lorakit ${r.backend}: ${r.tokensPerS.toFixed(0)} tok/s (best step ${r.bestTokensPerS.toFixed(0)})`);
    const torch = torchRuns({ ...W, steps: STEPS, threads: os.availableParallelism() }, 'step reference');
    for (const t of torch.filter(isRun))
      console.log(`${peerShort(t.peer)}: ${t.tokens_per_s.toFixed(0)} tok/s, lorakit ÷ it ${(r.tokensPerS / t.tokens_per_s).toFixed(2)}×`);
    const best = bestRun(torch);
    if (best)
      console.log(
        roundsMarkdown(roundsA(dir, { lorakit: r.tokensPerS, torch: best }, ROUNDS - 1, os.availableParallelism()), peerShort(best.peer)),
      );
  } else findPeers(); // 'peers' (main has checked the name)
}

async function bench(tmp: string) {
  const loadAtStart = os.loadavg()[0];
  const dir = path.join(tmp, 'reference');
  const qwen = new QwenModels(tmp);
  const ref: TinyModelOptions = { modelType: 'llama', configVocab: W.vocab, vocab: 512, hidden: W.hidden, intermediate: W.ff };
  makeTinyModel(dir, Object.assign(ref, { layers: W.layers, heads: W.heads, kvHeads: W.kv, std: 0.02 }));
  if (process.env.BENCH_ONLY) return only(process.env.BENCH_ONLY, dir, ref, qwen);
  const peers = findPeers();
  const mm = matmulSection();
  const qmm = qmatmulRows();
  const spec = loadSpec(dir);
  const estOf = (quant: QuantConfig | null) =>
    estimateMemory({ spec, lora: defaultLoraConfig({ r: W.rank, dropout: 0 }), seqLen: W.seq, batch: W.batch, quant });
  const quants: [string, QuantConfig | null][] = [
    ['f32 (no quantization)', null],
    ['NF4, blocks of 64', { type: 'nf4', blocksize: 64, doubleQuant: false }],
    ['NF4 + double quant, blocks of 64', { type: 'nf4', blocksize: 64, doubleQuant: true }],
    ['FP4 + double quant, blocks of 64', { type: 'fp4', blocksize: 64, doubleQuant: true }],
  ];
  const qruns = quants.map(([name, q]) => {
    const r = isolatedStep(dir, q, STEPS, { seq: W.seq, batch: W.batch });
    const e = estOf(q);
    console.log(
      `lorakit ${r.backend}, ${name}: ${r.tokensPerS.toFixed(0)} tok/s, ${r.stepMs.toFixed(0)} ms/step, peak ${formatBytes(r.peak.total)} (estimate ${formatBytes(e.bytes.total)}), weights ${r.peak.weights} B (analytic ${e.bytes.weights} B)`,
    );
    return { name, q, run: r, est: e };
  });
  const run = qruns[0].run;
  const est = qruns[0].est;
  const decode = await decodeSection(dir, ref, qwen);
  const b = step05bSection(qwen);
  const gpuRows = webgpuRows(dir);
  const tokenizing = tokenizeBench();
  const torch = torchRuns({ ...W, steps: STEPS, threads: os.availableParallelism() }, 'step reference');
  const bestA = bestRun(torch);
  const bestB = bestRun(b.torch);
  const rounds = bestA ? roundsA(dir, { lorakit: run.tokensPerS, torch: bestA }, ROUNDS - 1, os.availableParallelism()) : null;
  const aLorakit = rounds ? median(rounds.lorakit) : run.tokensPerS;
  const aTorch = rounds && bestA ? { ...bestA, tokens_per_s: median(rounds.torch) } : bestA;
  const ratio = (l: number, t: { tokens_per_s: number } | undefined) => (t ? `**${(l / t.tokens_per_s).toFixed(2)}×**` : 'no PyTorch');
  const summary = [
    `| (a) reference: ${(est.params.base / 1e6).toFixed(1)}M-param Llama, seq ${W.seq} × batch ${W.batch}, LoRA r=${W.rank} on all 7 projections, f32${rounds ? ` (median of ${rounds.lorakit.length} alternating rounds)` : ''} | ${aLorakit.toFixed(0)} tok/s | ${aTorch ? `${peerShort(aTorch.peer)}: ${aTorch.tokens_per_s.toFixed(0)} tok/s` : 'none'} | ${aTorch ? `lorakit / ${peerShort(aTorch.peer)}: ` : ''}${ratio(aLorakit, aTorch)} |`,
    `| (b) Qwen2.5-0.5B shape, seq 128 × batch 1, LoRA r=${W.rank} on all 7 projections (lorakit bf16, PyTorch f32) | ${b.lorakit.tokensPerS.toFixed(1)} tok/s | ${bestB ? `${peerShort(bestB.peer)}: ${bestB.tokens_per_s.toFixed(1)} tok/s` : 'none'} | ${bestB ? `lorakit / ${peerShort(bestB.peer)}: ` : ''}${ratio(b.lorakit.tokensPerS, bestB)} |`,
  ];

  const memRows = MEM_TAGS.map(
    (t) => `| ${t} | ${formatBytes(est.bytes[t])} | ${formatBytes(run.peak[t])} | ${pct(est.bytes[t], run.peak[t])} |`,
  );
  const md = `# Benchmarks

Generated by \`npm run bench\` (lorakit ${VERSION}) on ${new Date().toISOString().slice(0, 10)}.
Machine: ${machine()}.
Load (1-minute average, other processes included): ${loadAtStart.toFixed(1)} when the run began, ${os.loadavg()[0].toFixed(1)} when it ended.
These machines are noisy (±30% between runs); compare rows from one run.

## lorakit against PyTorch

Every PyTorch found on this machine (src/bench/torch.ts: $LORAKIT_BENCH_PYTHON, ./.venv, ./venv, the tests' .test-deps/py, .bench/venv, Debian's /usr/bin/python3, python3 on PATH; scripts/bench.mjs makes .bench/venv with \`pip install torch\` when there is no pip PyTorch), each on ${os.availableParallelism()} threads:

${peers.map((p) => `- ${peerLong(p)}`).join('\n') || '- none (no python3 with torch)'}
${process.env.LORAKIT_BENCH_PIP_NOTE ? `\nHow the pip PyTorch came to be: ${process.env.LORAKIT_BENCH_PIP_NOTE}.\n` : ''}
| workload | lorakit (median) | fastest PyTorch here (median) | lorakit / PyTorch |
|---|---|---|---|
${summary.join('\n')}

Below 1× PyTorch is faster. Both sides use every core; each engine runs its step in a process of its own.

## Workload (a): the reference (DESIGN.md §8)

Llama-shaped, ${(est.params.base / 1e6).toFixed(1)}M parameters (vocab ${W.vocab}, hidden ${W.hidden}, MLP ${W.ff}, ${W.layers} layers, ${W.heads} heads / ${W.kv} KV heads), f32 base, LoRA r=${W.rank} on all linear layers (${est.params.trainable.toLocaleString('en')} trainable), seq ${W.seq}, batch ${W.batch}: one optimizer step = forward + backward + AdamW. Median of ${STEPS} steps after 2 warm-up steps (BENCH_STEPS sets the count). PyTorch: bench/torch_step.py, the same model and step written out in PyTorch, autograd included. Peak RSS: each process's high-water mark (getrusage), model set-up included. ${trainableNote(torch, est.params.trainable)}

| engine | tokens/s (median) | step (median) | tokens/s (best step) | peak RSS | lorakit ÷ this |
|---|---|---|---|---|---|
| lorakit ${run.backend} | ${run.tokensPerS.toFixed(0)} | ${run.stepMs.toFixed(0)} ms | ${run.bestTokensPerS.toFixed(0)} | ${formatBytes(run.maxRss)} | 1.00× |
${torch.map((t) => (isRun(t) ? `| ${peerLong(t.peer)}, ${t.threads} threads | ${t.tokens_per_s.toFixed(0)} | ${t.step_ms.toFixed(0)} ms | ${t.best_tokens_per_s.toFixed(0)} | ${formatBytes(t.max_rss)} | ${(run.tokensPerS / t.tokens_per_s).toFixed(2)}× |` : `| ${peerLong(t.peer)} | ${t.skipped} | | | | |`)).join('\n') || '| PyTorch | not available (no python3 with torch) | | | | |'}
${rounds && bestA ? `\nThen ${rounds.lorakit.length - 1} more rounds of lorakit and ${peerShort(bestA.peer)} alone, alternating, each in a fresh process (the first round is the table above). Single runs vary more than these tables suggest: PyTorch's step the most. The summary at the top compares the medians.\n\n${roundsMarkdown(rounds, peerShort(bestA.peer))}` : ''}
${b.markdown}
## Memory: estimate before loading vs measured peak (tracker, by tag)

| tag | estimate | measured peak | estimate error |
|---|---|---|---|
${memRows.join('\n')}
| total | ${formatBytes(est.bytes.total)} | ${formatBytes(run.peak.total)} | ${pct(est.bytes.total, run.peak.total)} |

Peak RSS of the step's process: ${formatBytes(run.maxRss)}. The tracker counts the engine's tensors and the kernels' WebAssembly memory; RSS adds Node itself, the model file's read buffers and arrays freed but not yet collected.

${mm}
## QLoRA: the same workload on a 4-bit base

The decoder's linear weights (${(qruns[1].est.params.quantized / 1e6).toFixed(2)}M of the ${(est.params.base / 1e6).toFixed(1)}M parameters) held as 4-bit codes and scales, dequantized inside the matmuls (forward x·Wᵀ and backward dY·W); embeddings, norms and lm_head stay f32. Same LoRA, same step.

| base weights | bits / quantized param | tokens/s (median) | step | weights held (measured = analytic) | peak total | estimate | estimate error |
|---|---|---|---|---|---|---|---|
${qruns.map(({ name, q, run: r, est: e }) => `| ${name} | ${q ? bitsPerParam(q).toFixed(3) : '32'} | ${r.tokensPerS.toFixed(0)} | ${r.stepMs.toFixed(0)} ms | ${formatBytes(r.peak.weights)} ${r.peak.weights === e.bytes.weights ? '=' : '≠'} ${formatBytes(e.bytes.weights)} | ${formatBytes(r.peak.total)} | ${formatBytes(e.bytes.total)} | ${pct(e.bytes.total, r.peak.total)} |`).join('\n')}

Peak by tag, measured (estimate error):

| base weights | ${MEM_TAGS.join(' | ')} |
|---|${MEM_TAGS.map(() => '---').join('|')}|
${qruns.map(({ name, run: r, est: e }) => `| ${name} | ${MEM_TAGS.map((t) => `${formatBytes(r.peak[t])} (${pct(e.bytes[t], r.peak[t])})`).join(' | ')} |`).join('\n')}

On this small model the embedding and LM head (8192 × 256 each, f32) dominate the weights, so 4 bits shrink the
total less than they would on a 7B model, where the linear layers hold almost all parameters.

## The fused 4-bit matmul alone (NF4 + DQ, all threads, GFLOP/s, median of 7)

Each thread dequantizes a few 8-column panels of op(W) into its own scratch (at most 256 KiB) and multiplies every
row of x by them; the f32 weights never exist whole. Compared with the f32 gemm on an f32 copy of the same W.

| product | fused 4-bit | f32 gemm | ratio |
|---|---|---|---|
${qmm.join('\n')}

${decode}
## WebGPU

${gpuRows.join('\n')}

${tokenizing}`;
  fs.mkdirSync(path.join(root, 'docs'), { recursive: true });
  fs.writeFileSync(path.join(root, 'docs', 'BENCHMARKS.md'), md);
  console.log('\nwrote docs/BENCHMARKS.md');
}

void main();
