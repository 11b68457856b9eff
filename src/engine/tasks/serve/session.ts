/**
 * One generation session: a base model loaded once, any number of LoRA adapters beside it (unmerged), a KV prefix
 * cache and fair turns at the model. Each request names one adapter or none; switching costs nothing. The HTTP
 * server (src/serve) and the VS Code sidecar's inline completions both drive it.
 */
import { ConfigError, UserError } from '../../core/errors';
import { Rng } from '../../core/rng';
import { eosIds } from '../../formats/config';
import type { ChatMessage, Tokenizer } from '../../formats/tokenizer';
import type { LoraAdapter } from '../../model/lora';
import type { KVCache, LlamaModel } from '../../model/llama';
import { loadAdapter } from '../../model/peft';
import { nonFiniteError } from '../finite';
import { PrefixCache } from './prefix-cache';
import { fimTokens, FimTokens, promptIds } from './prompt';
import { Healing, TokenHealer, keepOnly } from './heal';
import { sample } from './sample';
import { StopScanner } from './stops';
import { Turns } from './turns';

export interface CompletionRequest {
  /** text to continue; with `suffix`, the text before the cursor */
  prompt?: string;
  /** the text after the cursor: fill-in-the-middle where the tokenizer has FIM tokens, ignored otherwise */
  suffix?: string;
  /** a conversation, rendered through the model's chat template (instead of `prompt`) */
  messages?: ChatMessage[];
  /** an adapter loaded under this name; none for the base */
  adapter?: string | null;
  maxTokens?: number;
  /** 0 = greedy */
  temperature?: number;
  topP?: number;
  seed?: number;
  stop?: string[];
  /**
   * token healing (heal.ts): the prompt's last token is taken back and the first new token must start with its
   * text, for a prompt cut at a cursor (editor completions); off by default, as in OpenAI's and Ollama's APIs
   */
  heal?: boolean;
  signal?: AbortSignal;
  /** text as it is decided (never text that a stop sequence may still take back) */
  onText?: (delta: string) => void;
}

export type FinishReason = 'stop' | 'length' | 'cancelled';

export interface Completion {
  text: string;
  ids: number[];
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
  /** prompt tokens whose keys and values came from the prefix cache */
  cachedTokens: number;
  /** the prompt did not fit the context with max tokens: its start (and a suffix's end) was left out */
  promptCut: boolean;
  /** fill-in-the-middle was used */
  fim: boolean;
  /** with `heal`: the text of the prompt's last token, taken back and written again first (not part of `text`) */
  healed: string | null;
  /** milliseconds from the request's first turn to its first new token */
  firstTokenMs: number;
  tokensPerS: number;
  /** the model's context (max_position_embeddings) */
  context: number;
}

export interface AdapterInfo {
  name: string;
  dir: string;
  rank: number;
  modules: number;
}

/** prompt tokens fed to the model at a time: the activations of a long prompt stay those of this many tokens */
export const PREFILL_CHUNK = 256;

export interface SessionOptions {
  /** KV caches kept for prefix reuse (default 4; 0 keeps none) */
  prefixCaches?: number;
  /** the model and adapter folders, to name the weight at fault when the logits are not finite */
  modelDir?: string;
}

export class GenerationSession {
  private readonly adapters = new Map<string, { adapter: LoraAdapter; dir: string; users: number; unloaded: boolean }>();
  private readonly turns = new Turns();
  private readonly cache: PrefixCache;
  readonly fim: FimTokens | null;
  private readonly ends: Set<number>;
  private readonly healer: TokenHealer;
  private closed = false;

  constructor(
    readonly model: LlamaModel,
    readonly tokenizer: Tokenizer,
    private readonly o: SessionOptions = {},
  ) {
    this.cache = new PrefixCache(model, o.prefixCaches ?? 4);
    this.fim = fimTokens(tokenizer);
    this.ends = new Set([...eosIds(model.spec), ...(tokenizer.eosId !== undefined ? [tokenizer.eosId] : []), ...(this.fim?.ends ?? [])]);
    this.healer = new TokenHealer(tokenizer, this.vocab());
  }

  /** Load a PEFT adapter folder under a name (replacing one of that name). */
  loadAdapter(name: string, dir: string): AdapterInfo {
    if (!name.trim()) throw new UserError('an adapter needs a name');
    const adapter = loadAdapter(dir, this.model.spec, this.model.be);
    if (this.adapters.has(name)) this.unloadAdapter(name);
    this.adapters.set(name, { adapter, dir, users: 0, unloaded: false });
    return this.info(name)!;
  }

  /** Use an adapter already in memory under a name (the session does not free it). */
  useAdapter(name: string, adapter: LoraAdapter, dir: string): void {
    this.adapters.set(name, { adapter, dir, users: 1, unloaded: false });
  }

  /** Unload an adapter; requests already using it finish with it first. False when no adapter has that name. */
  unloadAdapter(name: string): boolean {
    const a = this.adapters.get(name);
    if (!a) return false;
    this.adapters.delete(name);
    this.cache.drop(name);
    a.unloaded = true;
    if (a.users === 0) a.adapter.free(this.model.be);
    return true;
  }

  info(name: string): AdapterInfo | undefined {
    const a = this.adapters.get(name);
    if (!a) return undefined;
    const ranks = [...a.adapter.modules.values()].map((m) => m.r);
    return { name, dir: a.dir, rank: Math.max(0, ...ranks), modules: ranks.length };
  }

  adapterNames(): string[] {
    return [...this.adapters.keys()];
  }

  /** requests waiting for a turn at the model */
  get queued(): number {
    return this.turns.queued;
  }

  /** Complete a prompt, a fill-in-the-middle, or a chat. Cancelling (the signal) ends it with what it has. */
  async complete(req: CompletionRequest): Promise<Completion> {
    if (this.closed) throw new UserError('the generation session is closed');
    const model = this.model;
    const context = model.spec.maxPositions;
    const maxNew = req.maxTokens ?? 64;
    const temperature = req.temperature ?? 0;
    const topP = req.topP ?? 1;
    if (!(Number.isInteger(maxNew) && maxNew >= 0))
      throw new ConfigError(`max tokens must be a whole number ≥ 0, got ${maxNew}`, 'max-new-tokens');
    if (!(temperature >= 0)) throw new ConfigError(`temperature must be ≥ 0, got ${temperature}`, 'temperature');
    if (!(topP > 0 && topP <= 1)) throw new ConfigError(`top_p must be in (0, 1], got ${topP}`, 'top-p');
    if (maxNew >= context)
      throw new ConfigError(
        `max tokens ${maxNew} leaves no room for the prompt in the model's context of ${context} tokens`,
        'max-new-tokens',
      );
    const name = req.adapter ?? '';
    const entry = name ? this.adapters.get(name) : undefined;
    if (name && !entry) throw new UserError(`no adapter named "${name}" is loaded`);
    const input = req.messages ? { messages: req.messages } : { prompt: req.prompt ?? '', suffix: req.suffix };
    const p = promptIds(this.tokenizer, input, context - maxNew, this.fim, req.heal && !req.messages ? this.healer : undefined);
    if (entry) entry.users++;
    try {
      const s = { maxNew, temperature, topP, context, cut: p.cut, fim: p.fim, healed: p.healed };
      return await this.run(p.ids, entry?.adapter ?? null, name, req, s);
    } finally {
      if (entry && --entry.users === 0 && entry.unloaded) entry.adapter.free(model.be);
    }
  }

  private async run(
    promptIds: number[],
    adapter: LoraAdapter | null,
    name: string,
    req: CompletionRequest,
    s: { maxNew: number; temperature: number; topP: number; context: number; cut: boolean; fim: boolean; healed: Healing | null },
  ): Promise<Completion> {
    const model = this.model;
    const rng = new Rng(req.seed ?? (Math.random() * 2 ** 32) >>> 0);
    const n = this.vocab();
    const decode = this.decoder(s.healed);
    const stops = new StopScanner(req.stop ?? []);
    const out: number[] = [];
    let finish: FinishReason = 'length';
    let text = '';
    let firstTokenMs = 0;
    let t0 = 0;
    const room = promptIds.length + s.maxNew; // the whole generation's positions, taken at once
    const { kv, reused } = s.maxNew > 0 ? this.cache.take(name, promptIds, room) : { kv: model.newCache(), reused: 0 };
    let fed = promptIds.slice(0, reused);
    let ok = false;
    let stopped = false;
    try {
      let feed = promptIds.slice(reused);
      while (s.maxNew > 0 && feed.length > PREFILL_CHUNK) {
        if (req.signal?.aborted) break;
        await this.step(adapter, kv, feed.slice(0, PREFILL_CHUNK), () => (t0 ||= performance.now()));
        fed = fed.concat(feed.slice(0, PREFILL_CHUNK));
        feed = feed.slice(PREFILL_CHUNK);
      }
      for (let i = 0; i < s.maxNew; i++) {
        if (req.signal?.aborted) {
          finish = 'cancelled';
          break;
        }
        const logits = await this.step(adapter, kv, feed, () => (t0 ||= performance.now()));
        fed = fed.concat(feed);
        for (let j = 0; j < n; j++)
          if (!Number.isFinite(logits[j])) throw nonFiniteError('the logits', this.o.modelDir, this.info(name)?.dir);
        if (i === 0 && s.healed) keepOnly(logits, n, s.healed.allowed);
        const next = sample(logits, n, s.temperature, s.topP, rng);
        if (i === 0) firstTokenMs = performance.now() - t0;
        if (this.ends.has(next)) {
          finish = 'stop';
          break;
        }
        out.push(next);
        const r = stops.push(decode(out));
        if (r.delta) req.onText?.(r.delta);
        text = r.text;
        if (r.stopped) {
          finish = 'stop';
          stopped = true;
          break;
        }
        feed = [next];
      }
      if (!stopped) {
        const r = stops.push(out.length ? decode(out) : '', true);
        if (r.delta) req.onText?.(r.delta);
        text = r.text;
      }
      ok = true;
    } finally {
      // a step that failed half way leaves the cache's layers uneven: it is not kept
      if (ok) this.cache.give(name, fed, kv);
      else model.freeCache(kv);
    }
    if (req.signal?.aborted && finish === 'length' && out.length < s.maxNew) finish = 'cancelled';
    const secs = t0 ? (performance.now() - t0) / 1000 : 0;
    return {
      text,
      ids: out,
      finishReason: finish,
      promptTokens: promptIds.length,
      completionTokens: out.length,
      cachedTokens: reused,
      promptCut: s.cut,
      fim: s.fim,
      healed: s.healed?.text ?? null,
      firstTokenMs,
      tokensPerS: out.length / Math.max(secs, 1e-9),
      context: s.context,
    };
  }

  /** the vocabulary the logits cover */
  private vocab(): number {
    return Math.min(this.model.spec.vocabSize, this.tokenizer.vocabSize || this.model.spec.vocabSize);
  }

  /** the completion's text from its ids: after a healing, what follows the text taken back */
  private decoder(healed: Healing | null): (ids: number[]) => string {
    if (!healed) return (ids) => this.tokenizer.decode(ids);
    return (ids) => {
      const t = this.healer.textOf(ids) ?? this.tokenizer.decode(ids);
      return t.startsWith(healed.text) ? t.slice(healed.text.length) : t;
    };
  }

  /** One turn at the model: feed ids after the cache under an adapter, and read the last position's logits. */
  private async step(adapter: LoraAdapter | null, kv: KVCache, ids: number[], started: () => void): Promise<Float32Array> {
    const done = await this.turns.take();
    try {
      started();
      const model = this.model;
      model.adapter = adapter;
      model.adapterEnabled = true;
      const t = model.step(Int32Array.from(ids), kv);
      const logits = model.be.read(t);
      model.be.free(t);
      return logits;
    } finally {
      done();
      // let other requests, cancels and streamed writes in between turns
      await new Promise((r) => setImmediate(r));
    }
  }

  /** Free the cached prefixes and the adapters (the base model belongs to whoever opened it). */
  close(): void {
    this.closed = true;
    this.cache.drop();
    for (const name of [...this.adapters.keys()]) this.unloadAdapter(name);
  }
}
