/**
 * A worker thread of the tokenizing pool (tokenize-pool.ts): it builds the tokenizer from the same tokenizer.json,
 * takes chunks of texts from the Atomics counter, and posts each chunk's ids back. On an error it marks the chunk
 * failed and stops: the main thread encodes that chunk itself and reports the error there. Bundled on its own
 * (dist/tokenize-worker.js).
 */
import { workerData } from 'node:worker_threads';
import { TextTokenizer } from '../formats/tokenizer';
import { ChunkResult, DONE, FAILED, NEXT, STATES, TAKEN, WorkerInput } from './tokenize-pool';

const w = workerData as WorkerInput;
const ctl = new Int32Array(w.ctl);
const bytes = Buffer.from(w.bytes);

/** job i's text (i counts from the first job of all, as chunks do) */
function text(i: number): string {
  const k = i - w.base;
  return w.strings[k] ?? bytes.toString('utf8', k ? w.ends[k - 1] : 0, w.ends[k]);
}

function work(): void {
  let tok: TextTokenizer;
  try {
    tok = new TextTokenizer(w.dir, w.json, w.config);
  } catch {
    return; // the main thread built the same tokenizer, so this does not happen; if it does, it does the work
  }
  for (let c = Atomics.add(ctl, NEXT, 1); c < w.chunks.length; c = Atomics.add(ctl, NEXT, 1)) {
    if (Atomics.compareExchange(ctl, STATES + c, 0, TAKEN) !== 0) continue; // the main thread took it
    let r: ChunkResult;
    try {
      const [from, to] = w.chunks[c];
      const all: number[][] = [];
      let total = 0;
      for (let i = from; i < to; i++) {
        const ids = tok.encode(text(i), w.adds[i - w.base]);
        all.push(ids);
        total += ids.length;
      }
      r = { chunk: c, ids: new Int32Array(total), lengths: Int32Array.from(all, (a) => a.length) };
      let at = 0;
      for (const ids of all) for (const id of ids) r.ids[at++] = id === undefined ? -1 : id;
    } catch {
      Atomics.store(ctl, STATES + c, FAILED);
      Atomics.notify(ctl, STATES + c);
      return;
    }
    w.port.postMessage(r, [r.ids.buffer, r.lengths.buffer]);
    Atomics.store(ctl, STATES + c, DONE);
    Atomics.notify(ctl, STATES + c);
  }
}

work(); // then idle: the main thread terminates the workers once it has every chunk
