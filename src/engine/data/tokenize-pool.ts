/**
 * Tokenizing many texts on several threads: a folder's files, a JSONL file's rows. Synchronous, like the rest of
 * data loading. This thread starts alone, taking chunks of consecutive texts from an Atomics counter; once its pace
 * says that the rest would take more than PARALLEL_AFTER_MS, it starts `threads − 1` workers
 * (data/tokenize-worker.ts, bundled on its own) that take the remaining chunks from the same counter. A worker takes
 * a few tenths of a second to start and build its tokenizer, so small inputs, and a fast tokenizer on a few MB,
 * never pay for one. Each worker builds its tokenizer from the same tokenizer.json, so the ids are the same whoever
 * encodes a text, and results land by index: the order of the examples never depends on the threads.
 *
 * This thread never waits on a worker for long: once no chunk is left to take, it collects the workers' results
 * (receiveMessageOnPort) and encodes again itself any chunk that a worker gave up on (an error: this thread then
 * meets it too and reports it, naming the file) or that takes a worker much longer than this thread would (a
 * worker starved of CPU, or dead).
 */
import * as os from 'node:os';
import { MessageChannel, MessagePort, Worker, receiveMessageOnPort } from 'node:worker_threads';
import { bundleFile } from '../core/bundle';
import { UserError } from '../core/errors';
import { defaultThreads } from '../core/threads';
import { TextTokenizer, Tokenizer } from '../formats/tokenizer';

/** one text to encode, with the source its errors name (a file, or file:line) */
export interface EncodeJob {
  text: string;
  addSpecial: boolean;
  source: string;
}

/** the control block: [next chunk to take, then one state per chunk: 0 (nobody's yet), TAKEN, DONE, FAILED] */
export const NEXT = 0;
export const STATES = 1;
export const TAKEN = 1;
export const DONE = 2;
export const FAILED = 3;

/** what a worker posts for a chunk: every text's ids end to end, −1 standing for an id the tokenizer left undefined */
export interface ChunkResult {
  chunk: number;
  ids: Int32Array<ArrayBuffer>;
  lengths: Int32Array<ArrayBuffer>;
}

export interface WorkerInput {
  dir: string;
  json: unknown;
  config: unknown;
  /**
   * The texts from job `base` on (a worker only takes chunks after those this thread had taken when it started):
   * UTF-8 in `bytes`, job i from ends[i − base − 1] (0 for the first) to ends[i − base], which a worker decodes far
   * faster than it would deserialize the strings; a text that is not well-formed UTF-16 (a lone surrogate from a
   * JSONL "\ud800") would not survive UTF-8, and comes in `strings` instead.
   */
  base: number;
  bytes: SharedArrayBuffer;
  ends: Float64Array;
  strings: (string | null)[];
  adds: boolean[];
  chunks: [number, number][];
  ctl: SharedArrayBuffer;
  port: MessagePort;
}

export const TokenizePool = {
  /**
   * Workers start when this thread's pace says the rest would take it longer than this, plus twice what building
   * the tokenizer took here (each worker builds its own). Settable for tests.
   */
  PARALLEL_AFTER_MS: 1000,
  /** a chunk's least size in characters (at most 4 times that): small enough to share the work out evenly */
  CHUNK: 1 << 17,
  /** how long this thread waits for a worker's chunk, in ms, beyond 1.5 times what it would take itself (settable for tests) */
  PATIENCE_MS: 20,
  /** false: this thread leaves every chunk to the workers unless one fails or is late (tests of the workers' path) */
  MAIN_WORKS: true,
  /** the threads the last encodeAll used (1: this one alone), and how many of its texts the workers encoded */
  lastThreads: 1,
  lastFromWorkers: 0,
};

/**
 * The threads to tokenize on: LORAKIT_THREADS when set, else the cores that the load average leaves idle (this
 * thread included): a worker on a machine already busy gets little CPU and costs this thread its start, its own
 * tokenizer and its own cold word cache (measured: slower than one thread on 2 cores at load 7).
 */
export function poolThreads(): number {
  if (process.env.LORAKIT_THREADS) return defaultThreads();
  const idle = Math.round(os.availableParallelism() - os.loadavg()[0] + 1); // + 1: this thread is in the load
  return Math.max(1, Math.min(defaultThreads(), idle));
}

/** Encode every job, in order; on several threads when there is enough work and the tokenizer can be rebuilt in a worker. */
export function encodeAll(tok: Tokenizer, jobs: EncodeJob[], threads = poolThreads()): number[][] {
  let chars = 0;
  for (const j of jobs) chars += j.text.length;
  const chunks = chunksOf(jobs, Math.min(4 * TokenizePool.CHUNK, Math.max(TokenizePool.CHUNK, Math.ceil(chars / (threads * 16)))));
  const n = Math.min(threads, chunks.length);
  TokenizePool.lastThreads = 1;
  TokenizePool.lastFromWorkers = 0;
  const file = n > 1 && tok instanceof TextTokenizer ? workerBundle() : undefined;
  if (!file) return jobs.map((j) => encodeOne(tok, j));
  return encodeParallel(tok as TextTokenizer, jobs, chunks, n, file);
}

/** the worker's bundle, or undefined (one thread then) where it is missing: a build without it still tokenizes */
function workerBundle(): string | undefined {
  try {
    return bundleFile('tokenize-worker.js');
  } catch {
    return undefined;
  }
}

/** one job on this thread; a tokenizer error also names the text's source */
export function encodeOne(tok: Tokenizer, j: EncodeJob): number[] {
  try {
    return tok.encode(j.text, j.addSpecial);
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    const bare = e.file && e.message.startsWith(`${e.file}: `) ? e.message.slice(e.file.length + 2) : e.message;
    throw new UserError(`${bare} (tokenizing ${j.source})`, e.file);
  }
}

/** consecutive jobs of about `size` characters together (a longer job is a chunk of its own) */
function chunksOf(jobs: EncodeJob[], size: number): [number, number][] {
  const out: [number, number][] = [];
  let start = 0;
  let chars = 0;
  for (let i = 0; i < jobs.length; i++) {
    chars += jobs[i].text.length;
    if (chars >= size) {
      out.push([start, i + 1]);
      start = i + 1;
      chars = 0;
    }
  }
  if (start < jobs.length) out.push([start, jobs.length]);
  return out;
}

function encodeParallel(tok: TextTokenizer, jobs: EncodeJob[], chunks: [number, number][], n: number, file: string): number[][] {
  const out: number[][] = new Array(jobs.length);
  const have = new Uint8Array(chunks.length);
  const ctl = new Int32Array(new SharedArrayBuffer((STATES + chunks.length) * 4));
  const workers: Worker[] = [];
  const ports: MessagePort[] = [];
  const start = (next: number) => {
    const base = next < chunks.length ? chunks[next][0] : jobs.length;
    const rest = jobs.slice(base);
    const texts = packTexts(rest.map((j) => j.text));
    for (let w = 1; w < n; w++) {
      const { port1, port2 } = new MessageChannel();
      const input: WorkerInput = {
        dir: tok.dir,
        json: tok.json,
        config: tok.config,
        base,
        ...texts,
        adds: rest.map((j) => j.addSpecial),
        chunks,
        ctl: ctl.buffer as SharedArrayBuffer,
        port: port2,
      };
      const worker = new Worker(file, { workerData: input, transferList: [port2] });
      worker.on('error', () => {}); // a worker that dies leaves its chunk to this thread, which redoes it
      worker.unref();
      workers.push(worker);
      ports.push(port1);
    }
    TokenizePool.lastThreads = n;
  };
  try {
    const claim = (c: number) => Atomics.compareExchange(ctl, STATES + c, 0, TAKEN) === 0;
    const run = (c: number) => {
      for (let i = chunks[c][0]; i < chunks[c][1]; i++) out[i] = encodeOne(tok, jobs[i]);
      have[c] = 1;
    };
    const total = chars(jobs, [0, jobs.length]);
    // this thread takes chunks like any worker, and starts the workers once its pace says they are worth it; on
    // an error it stops, and the pass in order below reports it
    let ms = 0;
    let done = 0;
    let chunksHere = 0;
    // a worker starts Node and builds its own tokenizer: worth it when the rest takes this thread longer than that
    const startAfter = TokenizePool.PARALLEL_AFTER_MS + 2 * tok.buildMs;
    if (!TokenizePool.MAIN_WORKS) start(0);
    for (let c = TokenizePool.MAIN_WORKS ? Atomics.add(ctl, NEXT, 1) : chunks.length; c < chunks.length; c = Atomics.add(ctl, NEXT, 1)) {
      if (!claim(c)) continue;
      const t0 = performance.now();
      try {
        run(c);
      } catch {
        Atomics.store(ctl, STATES + c, FAILED);
        break;
      }
      const took = performance.now() - t0;
      const size = chars(jobs, chunks[c]);
      ms += took;
      done += size;
      // the first chunk runs cold (compiling, every word new): the pace is the latest chunk's, from the second on
      if (!workers.length && ++chunksHere >= 2 && ((total - done) * took) / size > startAfter) start(c + 1);
    }
    const msPerChar = done > 0 ? ms / done : 0.002; // this thread's pace (else 0.5 MB/s)
    // then every chunk in order: collected from a worker, or encoded here when nobody took it, when a worker failed
    // on it (so the first error in order is the one thrown), or when a worker takes half as long again as this
    // thread would (a busy machine starves a worker of CPU; a worker may have died): never a long wait
    const collect = () => {
      for (const p of ports)
        for (let m = receiveMessageOnPort(p); m; m = receiveMessageOnPort(p)) {
          const r = m.message as ChunkResult;
          if (have[r.chunk]) continue;
          have[r.chunk] = 1;
          unpack(r, chunks[r.chunk], out);
          TokenizePool.lastFromWorkers += r.lengths.length;
        }
    };
    for (let c = 0; c < chunks.length; c++) {
      const patience = TokenizePool.PATIENCE_MS + 1.5 * msPerChar * chars(jobs, chunks[c]);
      const t0 = Date.now();
      while (!have[c]) {
        collect();
        if (have[c]) break;
        const s = Atomics.load(ctl, STATES + c);
        if ((TokenizePool.MAIN_WORKS && claim(c)) || s === FAILED || Date.now() - t0 >= patience) run(c);
        else Atomics.wait(ctl, STATES + c, s, 50);
      }
    }
    return out;
  } finally {
    for (const w of workers) void w.terminate();
    for (const p of ports) p.close();
  }
}

const chars = (jobs: EncodeJob[], [from, to]: [number, number]) => jobs.slice(from, to).reduce((n, j) => n + j.text.length, 0);

/** String.prototype.isWellFormed (Node 20; the compiler's lib here predates it): no lone surrogate */
type WellFormed = string & { isWellFormed(): boolean };

/** texts as WorkerInput carries them: UTF-8 in shared memory, or as strings where UTF-8 would change them */
function packTexts(texts: string[]): Pick<WorkerInput, 'bytes' | 'ends' | 'strings'> {
  const strings = texts.map((t) => ((t as WellFormed).isWellFormed() ? null : t));
  const ends = new Float64Array(new SharedArrayBuffer(8 * texts.length));
  let total = 0;
  texts.forEach((t, i) => (ends[i] = total += strings[i] === null ? Buffer.byteLength(t) : 0));
  const bytes = new SharedArrayBuffer(total);
  const buf = Buffer.from(bytes);
  texts.forEach((t, i) => strings[i] === null && buf.write(t, i ? ends[i - 1] : 0));
  return { bytes, ends, strings };
}

/** a worker's chunk back into one id list per text */
function unpack(r: ChunkResult, [from, to]: [number, number], out: number[][]): void {
  let at = 0;
  for (let i = from, k = 0; i < to; i++, k++) {
    const len = r.lengths[k];
    const ids = new Array<number>(len);
    for (let t = 0; t < len; t++) {
      const v = r.ids[at + t];
      ids[t] = v === -1 ? (undefined as unknown as number) : v;
    }
    out[i] = ids;
    at += len;
  }
}
