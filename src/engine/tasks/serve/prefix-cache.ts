/**
 * KV caches of recent requests, kept for reuse: a request whose prompt starts like a cached one (for the same
 * adapter) takes that cache, cut back to the shared prefix, and computes only the tokens after it. Editor
 * completions resend almost the same prefix on every keystroke.
 */
import type { KVCache, LlamaModel } from '../../model/llama';

interface Entry {
  adapter: string;
  /** the tokens whose keys and values the cache holds, in order */
  ids: number[];
  kv: KVCache;
}

export class PrefixCache {
  private entries: Entry[] = []; // least recently used first

  constructor(
    private readonly model: LlamaModel,
    /** caches kept at most; 0 keeps none */
    readonly capacity: number,
  ) {}

  /**
   * A cache for `ids` under `adapter` (with room for `reserve` positions when it grows): the cached entry sharing the longest prefix, cut back to it (always leaving
   * at least one token to compute, whose logits the request needs), or a fresh one. The entry leaves the pool
   * until given back, so two requests never share one.
   */
  take(adapter: string, ids: readonly number[], reserve = 0): { kv: KVCache; reused: number } {
    let best = -1,
      bestLen = 0;
    for (let i = 0; i < this.entries.length; i++) {
      const e = this.entries[i];
      if (e.adapter !== adapter) continue;
      const n = commonPrefix(e.ids, ids);
      if (n > bestLen) [best, bestLen] = [i, n];
    }
    if (best < 0) return { kv: this.model.newCache(reserve), reused: 0 };
    const [e] = this.entries.splice(best, 1);
    e.kv.reserve = Math.max(e.kv.reserve, reserve);
    const keep = Math.min(bestLen, ids.length - 1, e.kv.len);
    this.model.truncateCache(e.kv, keep);
    return { kv: e.kv, reused: keep };
  }

  /** Keep a cache that holds `ids`, dropping the least recently used past capacity. */
  give(adapter: string, ids: number[], kv: KVCache): void {
    if (this.capacity <= 0 || kv.len === 0) return this.model.freeCache(kv);
    this.entries.push({ adapter, ids: ids.slice(0, kv.len), kv });
    while (this.entries.length > this.capacity) this.model.freeCache(this.entries.shift()!.kv);
  }

  /** Drop the caches of one adapter (it was unloaded), or all of them. */
  drop(adapter?: string): void {
    const gone = this.entries.filter((e) => adapter === undefined || e.adapter === adapter);
    this.entries = this.entries.filter((e) => !gone.includes(e));
    for (const e of gone) this.model.freeCache(e.kv);
  }

  /** positions held across all caches */
  get positions(): number {
    return this.entries.reduce((s, e) => s + e.kv.len, 0);
  }
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
