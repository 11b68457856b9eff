/**
 * Training data: a folder, a text file, or JSONL in four forms, tokenized into examples whose tokens carry a
 * "scored" flag (loss on completions and assistant turns only), then split and packed into seq_len windows.
 *
 * JSONL forms, one object per line:
 *   {"text": "..."}                                   every token scored
 *   {"prompt": "...", "completion": "..."}            completion tokens (and EOS) scored
 *   {"messages": [{"role", "content"}, ...]}          chat template; assistant turns scored
 *   {"input_ids": [...], "labels"?: [...]}            pre-tokenized; labels −100 are not scored
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../core/errors';
import { ChatMessage, Tokenizer } from '../formats/tokenizer';
import { Rng } from '../core/rng';
import { SkippedFile, asText, nonRegularKind, readFolder, summarizeSkipped } from './folder';
import { EncodeJob, encodeAll, encodeOne } from './tokenize-pool';

export interface Example {
  ids: number[];
  /** scored[i]: is ids[i] a prediction target */
  scored: boolean[];
  source: string;
}

export interface LoadedData {
  examples: Example[];
  skipped: SkippedFile[];
  kind: 'folder' | 'text' | 'jsonl';
  files: number;
}

/**
 * Read and tokenize examples. `appendEos` ends each document, text row and completion with EOS, as training wants
 * (it separates packed documents and teaches the model to stop); eval leaves the tokens as the tokenizer gives them.
 */
export function loadExamples(p: string, tok: Tokenizer, vocabSize: number, opts: { appendEos: boolean }): LoadedData {
  if (!fs.existsSync(p)) throw new UserError('data not found', p);
  const eos = opts.appendEos ? tok.eosId : undefined;
  const d = readExamples(p, tok, vocabSize, eos);
  // a tokenizer may know more tokens than the model has rows for (a mismatched pair); input_ids are checked per row
  for (const e of d.examples)
    for (const id of e.ids)
      if (id >= vocabSize)
        throw new UserError(
          `the tokenizer produced token id ${id} (in ${e.source}), past the model's vocab_size ${vocabSize}: the tokenizer and the model do not belong together`,
          p,
        );
  if (!hasTargets(d.examples))
    throw new UserError(
      'no tokens to learn from: nothing in the data is scored (every label is −100, or every completion and assistant turn is empty)',
      p,
    );
  return d;
}

/** Is any token a prediction target once the examples are packed into one stream (the very first never is)? */
function hasTargets(examples: Example[]): boolean {
  let first = true;
  for (const e of examples)
    for (let i = 0; i < e.scored.length; i++) {
      if (e.scored[i] && !first) return true;
      first = false;
    }
  return false;
}

function readExamples(p: string, tok: Tokenizer, vocabSize: number, eos: number | undefined): LoadedData {
  const st = fs.statSync(p);
  // reading a FIFO waits for a writer for ever (and a device may never end): refuse them before opening
  if (!st.isDirectory() && !st.isFile())
    throw new UserError(`not a regular file or folder (${nonRegularKind(st)}); training data must be a file or a folder`, p);
  if (st.isDirectory()) {
    const f = readFolder(p);
    if (f.files.length === 0) throw new UserError(`no text files to train on (${summarizeSkipped(f.skipped)})`, p);
    const encoded = encodeAll(
      tok,
      f.files.map((file) => ({ text: `${file.path}\n${file.text}`, addSpecial: true, source: path.join(p, file.path) })),
    );
    const examples = f.files.map((file, i) => {
      const ids = encoded[i];
      if (eos !== undefined) ids.push(eos);
      return { ids, scored: ids.map(() => true), source: file.path };
    });
    return { examples, skipped: f.skipped, kind: 'folder', files: f.files.length };
  }
  const buf = fs.readFileSync(p);
  const t = asText(buf);
  if ('reason' in t) throw new UserError(`${t.reason}; training data must be UTF-8 text`, p);
  if (p.endsWith('.jsonl') || p.endsWith('.json'))
    return { examples: parseJsonl(t.text, p, tok, vocabSize, eos), skipped: [], kind: 'jsonl', files: 1 };
  // the tokenizer's BOS and our EOS would otherwise make an empty file a 2-token example
  if (!t.text.trim()) throw new UserError('the file is empty: no text to train on', p);
  const ids = encodeOne(tok, { text: t.text, addSpecial: true, source: p });
  if (eos !== undefined) ids.push(eos);
  if (ids.length < 2) throw new UserError('the text is too short to train on', p);
  return { examples: [{ ids, scored: ids.map(() => true), source: path.basename(p) }], skipped: [], kind: 'text', files: 1 };
}

/**
 * Rows are read in order; "text" and "prompt"/"completion" rows are tokenized together afterwards (on several
 * threads when there is much text), chat rows as they are read (their parts depend on one another).
 */
function parseJsonl(text: string, file: string, tok: Tokenizer, vocabSize: number, eos: number | undefined): Example[] {
  const out: Example[] = [];
  const jobs: EncodeJob[] = [];
  /** examples still to be made from the ids of jobs: [index in out, first job, kind] */
  const pending: [number, number, 'text' | 'completion'][] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const n = i + 1;
    if (!line.trim()) return;
    let row: any;
    try {
      row = JSON.parse(line);
    } catch (caught) {
      const e = caught as NodeJS.ErrnoException;
      throw new UserError(`line ${n}: not valid JSON (${e.message})`, file);
    }
    const bad = (msg: string) => new UserError(`line ${n}: ${msg}`, file);
    if (!row || typeof row !== 'object' || Array.isArray(row)) throw bad('expected a JSON object');
    const source = `${path.basename(file)}:${n}`;
    const at = `${file}:${n}`;
    if (typeof row.text === 'string') {
      pending.push([out.push({ ids: [], scored: [], source }) - 1, jobs.length, 'text']);
      jobs.push({ text: row.text, addSpecial: true, source: at });
    } else if ('prompt' in row || 'completion' in row) {
      if (typeof row.prompt !== 'string' || typeof row.completion !== 'string') throw bad('"prompt" and "completion" must both be strings');
      pending.push([out.push({ ids: [], scored: [], source }) - 1, jobs.length, 'completion']);
      jobs.push({ text: row.prompt, addSpecial: true, source: at }, { text: row.completion, addSpecial: false, source: at });
    } else if ('messages' in row) out.push(chatExample(row.messages, tok, source, bad));
    else if ('input_ids' in row) out.push(idsExample(row, vocabSize, source, bad));
    else throw bad('expected one of the fields "text", "prompt"+"completion", "messages" or "input_ids"');
  });
  if (out.length === 0) throw new UserError('no examples (the file is empty)', file);
  const ids = encodeAll(tok, jobs);
  for (const [k, j, kind] of pending)
    out[k] = kind === 'text' ? textExample(ids[j], out[k].source, eos) : completionExample(ids[j], ids[j + 1], out[k].source, eos);
  return out;
}

function textExample(ids: number[], source: string, eos: number | undefined): Example {
  if (eos !== undefined) ids.push(eos);
  return { ids, scored: ids.map(() => true), source };
}

/** prompt tokens (with the tokenizer's specials, e.g. BOS) unscored, then the completion (+ EOS) scored */
function completionExample(p: number[], c: number[], source: string, eos: number | undefined): Example {
  if (eos !== undefined) c.push(eos);
  return { ids: [...p, ...c], scored: [...p.map(() => false), ...c.map(() => true)], source };
}

/**
 * The conversation rendered by the chat template, cut where each message begins. An assistant message's
 * header (the generation prompt) is unscored; its content through the template's end-of-turn is scored.
 */
function chatExample(messages: unknown, tok: Tokenizer, source: string, bad: (m: string) => Error): Example {
  if (!Array.isArray(messages) || messages.length === 0) throw bad('"messages" must be a non-empty array');
  for (const m of messages)
    if (!m || typeof m.role !== 'string' || typeof m.content !== 'string') throw bad('each message needs string "role" and "content"');
  const msgs = messages as ChatMessage[];
  const ids: number[] = [];
  const scored: boolean[] = [];
  let prev = '';
  const push = (text: string, s: boolean) => {
    if (!text.startsWith(prev))
      throw bad('the chat template does not render conversations prefix by prefix; cannot locate assistant turns');
    const part = text.slice(prev.length);
    const t = tok.encode(part, ids.length === 0);
    ids.push(...t);
    for (let i = 0; i < t.length; i++) scored.push(s);
    prev = text;
  };
  for (let i = 0; i < msgs.length; i++) {
    if (msgs[i].role === 'assistant') push(tok.applyChat(msgs.slice(0, i), true), false);
    push(tok.applyChat(msgs.slice(0, i + 1)), msgs[i].role === 'assistant');
  }
  return { ids, scored, source };
}

function idsExample(row: any, vocabSize: number, source: string, bad: (m: string) => Error): Example {
  const ids = row.input_ids;
  if (!Array.isArray(ids) || ids.length === 0) throw bad('"input_ids" must be a non-empty array of token ids');
  for (const id of ids)
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw bad(`token id ${JSON.stringify(id)} is out of range [0, ${vocabSize})`);
  let scored = ids.map(() => true);
  if (row.labels !== undefined) {
    if (!Array.isArray(row.labels) || row.labels.length !== ids.length) throw bad('"labels" must be an array as long as "input_ids"');
    scored = row.labels.map((l: unknown, i: number) => label(l, ids[i], i, bad));
  }
  return { ids, scored, source };
}

/**
 * Is this position scored? Labels follow Hugging Face: −100 masks the position out, anything else must be the
 * token at that position (the model shifts labels itself). lorakit uses labels only as a loss mask, so a label
 * that is not −100 and differs from input_ids would silently train on other targets than the data says: refused.
 */
function label(l: unknown, id: number, i: number, bad: (m: string) => Error): boolean {
  if (l === -100) return false;
  if (l === id) return true;
  const what = JSON.stringify(l) ?? String(l);
  if (!Number.isInteger(l))
    throw bad(`labels[${i}] must be −100 or a token id, got ${what.length > 40 ? `${what.slice(0, 37)}...` : what}`);
  throw bad(
    `labels[${i}] is ${l} but input_ids[${i}] is ${id}: a label must be −100 (not scored) or equal to the input id at its position`,
  );
}

export interface Windows {
  count: number;
  T: number;
  inputs: Int32Array; // (count, T)
  targets: Int32Array; // (count, T), −1 where nothing is scored
}

/**
 * Pack examples into windows of T inputs: the token stream is cut every T tokens and each window predicts the
 * next T tokens (so every token is a target exactly once). The tail is padded with `pad` and unscored.
 */
export function pack(examples: Example[], T: number, pad: number): Windows {
  const stream: number[] = [];
  const scored: boolean[] = [];
  for (const e of examples) {
    for (let i = 0; i < e.ids.length; i++) {
      stream.push(e.ids[i]);
      scored.push(e.scored[i]);
    }
  }
  const count = Math.max(0, Math.ceil((stream.length - 1) / T));
  const inputs = new Int32Array(count * T).fill(pad);
  const targets = new Int32Array(count * T).fill(-1);
  for (let w = 0; w < count; w++)
    for (let t = 0; t < T; t++) {
      const i = w * T + t;
      if (i + 1 >= stream.length) break;
      inputs[w * T + t] = stream[i];
      if (scored[i + 1]) targets[w * T + t] = stream[i + 1];
    }
  return { count, T, inputs, targets };
}

/**
 * Deterministic split: examples are shuffled with the seed and the first ⌈n·fraction⌉ held out. A single long
 * example (one text file) is split by windows instead, so there is always something to evaluate on.
 */
export function splitExamples(examples: Example[], fraction: number, seed: number): { train: Example[]; eval: Example[] } {
  if (fraction <= 0 || examples.length === 0) return { train: examples, eval: [] };
  if (examples.length < 2) return { train: examples, eval: [] };
  const order = new Rng(seed ^ 0x5eed).shuffle([...examples.keys()]);
  const nEval = Math.min(examples.length - 1, Math.max(1, Math.ceil(examples.length * fraction)));
  const evalSet = new Set(order.slice(0, nEval));
  return { train: examples.filter((_, i) => !evalSet.has(i)), eval: examples.filter((_, i) => evalSet.has(i)) };
}

/** Hold out windows (for single-document data) deterministically. */
export function splitWindows(w: Windows, fraction: number, seed: number): { train: Windows; eval: Windows } {
  const order = new Rng(seed ^ 0x5eed).shuffle([...Array(w.count).keys()]);
  const nEval = fraction > 0 && w.count > 1 ? Math.min(w.count - 1, Math.max(1, Math.ceil(w.count * fraction))) : 0;
  const take = (idx: number[]): Windows => {
    const inputs = new Int32Array(idx.length * w.T);
    const targets = new Int32Array(idx.length * w.T);
    idx.forEach((src, i) => {
      inputs.set(w.inputs.subarray(src * w.T, (src + 1) * w.T), i * w.T);
      targets.set(w.targets.subarray(src * w.T, (src + 1) * w.T), i * w.T);
    });
    return { count: idx.length, T: w.T, inputs, targets };
  };
  const evalIdx = order.slice(0, nEval).sort((a, b) => a - b);
  const ev = new Set(evalIdx);
  return { train: take([...Array(w.count).keys()].filter((i) => !ev.has(i))), eval: take(evalIdx) };
}

export interface PreparedData {
  train: Windows;
  eval: Windows;
  examples: number;
  tokens: number;
  skipped: SkippedFile[];
  kind: LoadedData['kind'];
  files: number;
}

export function prepareData(p: string, tok: Tokenizer, vocabSize: number, T: number, evalSplit: number, seed: number): PreparedData {
  const d = loadExamples(p, tok, vocabSize, { appendEos: true });
  const pad = tok.eosId ?? 0;
  const tokens = d.examples.reduce((s, e) => s + e.ids.length, 0);
  const split = splitExamples(d.examples, evalSplit, seed);
  let train = pack(split.train, T, pad);
  let ev = pack(split.eval, T, pad);
  if (split.eval.length === 0 && evalSplit > 0) ({ train, eval: ev } = splitWindows(train, evalSplit, seed));
  if (train.count === 0) throw new UserError('not enough tokens to make one training window', p);
  return { train, eval: ev, examples: d.examples.length, tokens, skipped: d.skipped, kind: d.kind, files: d.files };
}
