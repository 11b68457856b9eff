/**
 * `npm run demo`: fine-tune a tiny generated model on this repository's own docs and sources, on the CPU, in a
 * couple of minutes. Nothing is downloaded: the base model is generated with random weights (so its own
 * completions are noise), and its tokenizer is trained on the same files. A low-rank adapter on a random base
 * can learn little more than which tokens are frequent here, so expect the loss to fall by about half a nat and
 * the adapted completion to look like this repository's token soup rather than code.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  createBackend,
  defaultLoraConfig,
  formatBytes,
  generate,
  makeTinyModel,
  openModel,
  readFolder,
  summarizeSkipped,
  train,
} from './engine';

const root = path.resolve(__dirname, '..');
const work = path.join(root, '.lorakit-demo');
const data = root;
const PROMPT = 'export function ';

async function main() {
  const t0 = Date.now();
  fs.rmSync(work, { recursive: true, force: true });
  const model = path.join(work, 'model');
  console.log('lorakit demo: LoRA fine-tuning on this repository, on the CPU\n');
  const folder = readFolder(data);
  const corpus = folder.files
    .map((f) => f.text)
    .join('\n')
    .slice(0, 400_000);
  makeTinyModel(model, {
    modelType: 'llama',
    hidden: 128,
    intermediate: 352,
    layers: 4,
    heads: 4,
    kvHeads: 2,
    vocab: 1024,
    corpus,
    seed: 7,
    std: 0.05,
  });
  console.log(`1. generated a tiny Llama-shaped base model (random weights, 1024-token BPE tokenizer) in ${path.relative(root, model)}`);
  console.log(`2. training data: ${folder.files.length} text files of this repository (${summarizeSkipped(folder.skipped)})\n`);
  const out = path.join(work, 'run');
  const r = await train(
    {
      model,
      data,
      out,
      lora: defaultLoraConfig({ r: 16, alpha: 32, dropout: 0.05 }),
      seqLen: 128,
      batch: 8,
      gradAccum: 1,
      lr: 1e-2,
      steps: 150,
      warmup: 0.05,
      schedule: 'cosine',
      evalSplit: 0.05,
      evalEvery: 30,
      seed: 0,
      checkpointEvery: 50,
      keepCheckpoints: 2,
      maxGradNorm: 1,
      weightDecay: 0,
      backend: 'auto',
    },
    {
      events: {
        onLog: (l) => console.log(`   ${l}`),
        onStep: (m) => {
          if (m.step % 10 === 0 || m.step === 1)
            console.log(
              `   step ${String(m.step).padStart(3)}/${m.total_steps}  loss ${m.loss.toFixed(3)}  ${m.tokens_per_s.toFixed(0)} tok/s  peak ${formatBytes(m.mem.total)}`,
            );
        },
        onEval: (m) => console.log(`   eval @ ${m.step}: loss ${m.eval_loss.toFixed(3)} (perplexity ${m.eval_perplexity.toFixed(1)})`),
      },
    },
  );
  console.log(
    `\n3. train loss ${r.firstLoss!.toFixed(3)} → ${r.finalLoss!.toFixed(3)}, eval loss ${r.firstEvalLoss!.toFixed(3)} → ${r.finalEvalLoss!.toFixed(3)}`,
  );
  console.log(`   adapter (PEFT format): ${path.relative(root, r.adapterDir!)}/`);
  const { be } = createBackend('auto');
  const { model: m, tokenizer } = openModel(model, be, r.adapterDir);
  const show = async (label: string) => {
    const g = await generate(m, tokenizer, PROMPT, { maxNewTokens: 40, temperature: 0.8, topP: 0.95, seed: 1 });
    console.log(`\n   ${label}:\n   ${JSON.stringify(PROMPT + g.text)}`);
  };
  console.log(`\n4. a sampled completion of ${JSON.stringify(PROMPT)} (temperature 0.8, top-p 0.95, seed 1)`);
  m.adapterEnabled = false;
  await show('base model (random weights)');
  m.adapterEnabled = true;
  await show('base model + the adapter just trained');
  console.log(
    `\ndone in ${((Date.now() - t0) / 1000).toFixed(0)} s. Try: npx lorakit generate --model ${path.relative(root, model)} --adapter ${path.relative(root, r.adapterDir!)} --prompt "const "`,
  );
}

main().catch((e) => {
  console.error(`demo failed: ${e?.stack ?? e}`);
  process.exitCode = 1;
});
