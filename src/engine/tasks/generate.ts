/** Text generation with a KV cache: greedy, or temperature with top-p (nucleus) sampling, adapter on or off. */
import { ConfigError, UserError } from '../core/errors';
import { eosIds } from '../formats/config';
import { Tokenizer } from '../formats/tokenizer';
import { LlamaModel } from '../model/llama';
import { Rng } from '../core/rng';
import { nonFiniteError } from './finite';

export interface GenerateOptions {
  maxNewTokens?: number;
  temperature?: number; // 0 = greedy
  topP?: number;
  seed?: number;
  onText?: (delta: string) => void;
  /** stop early (between tokens); the text so far is returned */
  signal?: AbortSignal;
  /** render the prompt as a user turn with the model's chat template (and the assistant's header) */
  chat?: boolean;
  /** the model and adapter folders, to name the weight at fault when the logits are not finite */
  modelDir?: string;
  adapterDir?: string;
}

/** prompt tokens fed to the model at a time: the activations of a long prompt stay those of this many tokens */
export const PREFILL_CHUNK = 256;
/** characters of a prompt kept per token of context before tokenizing (a token is far shorter): a 50 MB prompt is not tokenized whole */
const CHARS_PER_TOKEN_KEPT = 64;

export interface Generation {
  text: string;
  ids: number[];
  promptTokens: number;
  newTokens: number;
  tokensPerS: number;
  /** the prompt was longer than the model's context (less the new tokens): only its end, promptTokens long, was fed */
  promptCut: boolean;
  /** the model's context (max_position_embeddings): prompt and new tokens together */
  context: number;
}

/** Pick the next token from logits (the first `n` entries are the real vocabulary). */
export function sample(logits: Float32Array, n: number, temperature: number, topP: number, rng: Rng): number {
  if (temperature <= 0) {
    let best = 0;
    for (let i = 1; i < n; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[i]);
  const p = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += p[i] = Math.exp((logits[i] - max) / temperature);
  const order = [...Array(n).keys()].sort((a, b) => p[b] - p[a] || a - b);
  let keep = 0;
  let mass = 0;
  while (keep < n && (keep === 0 || mass < topP * sum)) mass += p[order[keep++]];
  let u = rng.next() * mass;
  for (let i = 0; i < keep; i++) {
    u -= p[order[i]];
    if (u <= 0) return order[i];
  }
  return order[keep - 1];
}

/** Generate a completion, yielding to the event loop between tokens so that a caller can cancel or stream. */
export async function generate(model: LlamaModel, tok: Tokenizer, prompt: string, o: GenerateOptions = {}): Promise<Generation> {
  const maxNew = o.maxNewTokens ?? 64;
  const temperature = o.temperature ?? 0;
  const topP = o.topP ?? 1;
  if (!(Number.isInteger(maxNew) && maxNew >= 0))
    throw new ConfigError(`--max-new-tokens must be a whole number ≥ 0, got ${maxNew}`, 'max-new-tokens');
  if (!(temperature >= 0)) throw new ConfigError(`--temperature must be ≥ 0, got ${temperature}`, 'temperature');
  if (!(topP > 0 && topP <= 1)) throw new ConfigError(`--top-p must be in (0, 1], got ${topP}`, 'top-p');
  const rng = new Rng(o.seed ?? 0);
  const context = model.spec.maxPositions;
  if (maxNew >= context)
    throw new ConfigError(
      `--max-new-tokens ${maxNew} leaves no room for the prompt in the model's context of ${context} tokens (max_position_embeddings)`,
      'max-new-tokens',
    );
  // a prompt far longer than the context is cut before tokenizing (its end is what is kept anyway)
  const maxChars = context * CHARS_PER_TOKEN_KEPT;
  const text = prompt.length > maxChars ? prompt.slice(prompt.length - maxChars) : prompt;
  // a rendered chat template carries its own special tokens (as transformers' apply_chat_template encodes it)
  let promptIds = o.chat ? tok.encode(tok.applyChat([{ role: 'user', content: text }], true), false) : tok.encode(text);
  if (promptIds.length === 0) throw new UserError('the prompt is empty');
  // prompt and completion must fit the context: keep the end of the prompt
  const room = context - maxNew;
  const promptCut = promptIds.length > room || text !== prompt;
  if (promptIds.length > room) promptIds = promptIds.slice(promptIds.length - room);
  const stops = new Set([...eosIds(model.spec), ...(tok.eosId !== undefined ? [tok.eosId] : [])]);
  const n = Math.min(model.spec.vocabSize, tok.vocabSize);
  const be = model.be;
  const cache = model.newCache(promptIds.length + maxNew); // room for the whole generation at once
  const out: number[] = [];
  const t0 = performance.now();
  let shown = '';
  try {
    // the prompt in chunks through the KV cache: memory bounded by the chunk, not by the prompt
    let feed = Int32Array.from(promptIds);
    while (maxNew > 0 && feed.length > PREFILL_CHUNK) {
      const logitsT = model.step(feed.subarray(0, PREFILL_CHUNK), cache);
      be.free(logitsT);
      feed = feed.subarray(PREFILL_CHUNK);
      await new Promise((r) => setImmediate(r));
      if (o.signal?.aborted) break;
    }
    for (let i = 0; i < maxNew && !o.signal?.aborted; i++) {
      const logitsT = model.step(feed, cache);
      const logits = be.read(logitsT);
      for (let j = 0; j < n; j++)
        if (!Number.isFinite(logits[j])) {
          be.free(logitsT);
          throw nonFiniteError('the logits', o.modelDir, o.adapterDir);
        }
      const next = sample(logits, n, temperature, topP, rng);
      be.free(logitsT);
      if (stops.has(next)) break;
      out.push(next);
      if (o.onText) {
        const text = tok.decode(out);
        if (!text.endsWith('\uFFFD')) {
          o.onText(text.slice(shown.length));
          shown = text;
        }
      }
      feed = Int32Array.of(next);
      await new Promise((r) => setImmediate(r));
    }
  } finally {
    model.freeCache(cache);
  }
  const s = (performance.now() - t0) / 1000;
  return {
    text: out.length ? tok.decode(out) : '',
    ids: out,
    promptTokens: promptIds.length,
    newTokens: out.length,
    tokensPerS: out.length / Math.max(s, 1e-9),
    promptCut,
    context,
  };
}
