/**
 * The tokenizing bench: a generated 10 MB folder of code-like files (fixtures/code.ts) through a byte-level BPE
 * tokenizer, before (@huggingface/tokenizers' encode, one thread, as lorakit did) and after (the fast encode on one
 * thread, then on all of them through the pool), and loadExamples end to end. Checks that every file's ids agree.
 * A section of `npm run bench`; alone: `node dist/bench-tokenize.js [MB]`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeTokenizer, TokenizerStyle } from '../engine/fixtures/bpe';
import { codeText, writeCodeFolder } from '../engine/fixtures/code';
import { TextTokenizer } from '../engine/formats/tokenizer';
import { readFolder } from '../engine/data/folder';
import { loadExamples } from '../engine/data/dataset';
import { EncodeJob, TokenizePool, encodeAll } from '../engine/data/tokenize-pool';
import { defaultThreads } from '../engine/core/threads';

const load = () => os.loadavg()[0].toFixed(1);

/** wall time, and CPU time of every thread of the process (less sensitive to other work on the machine) */
function timed<T>(fn: () => T): { value: T; s: number; cpu: number; load: string } {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const value = fn();
  const c = process.cpuUsage(c0);
  return { value, s: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6, load: load() };
}

/** the markdown section; `mb` megabytes of generated code */
export function tokenizeBench(mb = 10): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-bench-tok-'));
  try {
    const { files, bytes } = writeCodeFolder(dir, mb * 1e6, 0);
    const jobs: EncodeJob[] = readFolder(dir).files.map((f) => ({ text: `${f.path}\n${f.text}`, addSpecial: true, source: f.path }));
    const MB = bytes / 1e6;
    const rows: string[] = [];
    const corpus = codeText(100_000, 99);
    for (const style of ['qwen2', 'gpt2'] as TokenizerStyle[]) {
      const t = makeTokenizer(corpus, 2048, style === 'gpt2', style);
      const fresh = () => new TextTokenizer(dir, t.tokenizerJson, t.tokenizerConfig); // an empty word cache each time
      const before = timed(() => {
        const tok = fresh();
        return jobs.map((j) => tok.encodeReference(j.text, j.addSpecial));
      });
      const one = timed(() => encodeAll(fresh(), jobs, 1));
      const all = timed(() => encodeAll(fresh(), jobs));
      const threads = TokenizePool.lastThreads;
      const after = TokenizePool.PARALLEL_AFTER_MS;
      TokenizePool.PARALLEL_AFTER_MS = 0; // workers from the second chunk on, whatever the pace
      const forced = timed(() => encodeAll(fresh(), jobs, defaultThreads()));
      const forcedThreads = TokenizePool.lastThreads;
      TokenizePool.PARALLEL_AFTER_MS = after;
      for (const [what, r] of [
        ['fast, 1 thread', one],
        ['fast, all threads', all],
        ['fast, workers from the start', forced],
      ] as const)
        r.value.forEach((ids, i) => {
          const want = before.value[i];
          if (ids.length !== want.length || ids.some((x, k) => x !== want[k]))
            throw new Error(`${style} ${what}: ${jobs[i].source} differs`);
        });
      const e2e = timed(() => loadExamples(dir, fresh(), t.vocabSize + 16, { appendEos: true }));
      const row = (what: string, th: number, r: { s: number; cpu: number; load: string }) =>
        `| ${style} | ${what} | ${th} | ${r.s.toFixed(2)} s | ${(MB / r.s).toFixed(2)} | ${(before.s / r.s).toFixed(1)}× | ${r.cpu.toFixed(2)} s | ${r.load} |`;
      rows.push(
        row('before: @huggingface/tokenizers encode', 1, before),
        row('after: fast encode', 1, one),
        row(`after: fast encode + pool (idle cores; workers if the rest takes > ${after} ms)`, threads, all),
        row('after: fast encode + workers on every core, started early', forcedThreads, forced),
        row('after: loadExamples end to end (walk, read, tokenize)', TokenizePool.lastThreads, e2e),
      );
      console.log(rows.slice(-5).join('\n'));
    }
    return `## Tokenizing a folder

A generated folder of code-like text (${files} files, ${MB.toFixed(1)} MB: identifiers that repeat, numbers, strings with unicode, comments, indentation, long lines, CRLF files, special tokens written in the text), through a byte-level BPE of 2048 tokens trained on the same kind of text, in Qwen2's layout (NFC, Split regex, ByteLevel) and GPT-2's (ByteLevel regex, BOS). Every file's ids on the fast paths are checked equal to the library's. ${defaultThreads()} threads available; The pool uses the cores the load average leaves idle (LORAKIT_THREADS overrides). CPU time counts every thread of the process; load is the 1-minute load average after each row (other work on the machine slows every row, and a worker thread most).

| tokenizer | path | threads | time | MB/s | speed-up | CPU time | load |
|---|---|---|---|---|---|---|---|
${rows.join('\n')}
`;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith('bench-tokenize.js')) {
  const md = tokenizeBench(Number(process.argv[2] ?? 10));
  console.log(`\n${md}`);
}
