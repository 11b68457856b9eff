/**
 * Workload (a) again, in rounds that alternate lorakit and the fastest PyTorch, each in a fresh process. On these
 * shared 2-core machines one PyTorch run can differ from the next by ±30% (its 2-thread step measured anywhere from
 * 1365 to 2428 tok/s here in one afternoon), more than lorakit's; the medians of the rounds, side by side, are what
 * the summary compares.
 */
import { W, STEPS, median } from '../bench-step';
import { isolatedStep } from './child';
import { TorchRun, isRun, torchRuns } from './torch';

export interface Rounds {
  lorakit: number[];
  torch: number[];
}

/** `first` (lorakit tok/s, the fastest PyTorch's run) and `more` rounds after it */
export function roundsA(dir: string, first: { lorakit: number; torch: TorchRun }, more: number, threads: number): Rounds {
  const r: Rounds = { lorakit: [first.lorakit], torch: [first.torch.tokens_per_s] };
  for (let i = 0; i < more; i++) {
    r.lorakit.push(isolatedStep(dir, null, STEPS, { seq: W.seq, batch: W.batch }).tokensPerS);
    const t = torchRuns({ ...W, steps: STEPS, threads }, `step reference, round ${i + 2}`, [first.torch.peer]).filter(isRun)[0];
    if (t) r.torch.push(t.tokens_per_s);
  }
  return r;
}

/** one line per round and the medians' ratio, for the doc */
export function roundsMarkdown(r: Rounds, torchName: string): string {
  const rows = r.lorakit.map(
    (l, i) => `| ${i + 1} | ${l.toFixed(0)} | ${r.torch[i]?.toFixed(0) ?? '—'} | ${r.torch[i] ? (l / r.torch[i]).toFixed(2) + '×' : '—'} |`,
  );
  return `| round | lorakit tok/s | ${torchName} tok/s | ratio |
|---|---|---|---|
${rows.join('\n')}
| **median** | **${median(r.lorakit).toFixed(0)}** | **${median(r.torch).toFixed(0)}** | **${(median(r.lorakit) / median(r.torch)).toFixed(2)}×** |
`;
}
