/**
 * Token healing for completions: a prompt cut at the cursor often ends inside what the model would write as one
 * token (`return` before ` zebra`, a lone trailing space, half an identifier), so its last token is one the model
 * rarely saw there. The last token is taken back, and the first new token must be one whose text starts with the
 * text taken back; the completion reported is what comes after that text. (As llama.cpp's and guidance's token
 * healing do, over one token.)
 *
 * Token texts are decoded after a fixed anchor token (`decode([anchor, id])` less the anchor's text), so that a
 * decoder that drops a sequence's leading space (SentencePiece's) keeps it here; for byte-level BPE it is the same
 * as decoding the token alone.
 */
import type { Tokenizer } from '../../formats/tokenizer';

export interface Healing {
  /** the text of the token taken back (the completion's text starts after it) */
  text: string;
  /** ids the first new token may be */
  allowed: Int32Array;
}

export class TokenHealer {
  private anchor: { id: number; text: string } | null | undefined;
  /** every token's text (ids below `n`), sorted by text, built on first use */
  private sorted?: { texts: string[]; ids: Int32Array };

  constructor(
    private readonly tok: Tokenizer,
    /** the vocabulary the logits cover */
    private readonly n: number,
  ) {}

  /** decoded text of ids as they read after the anchor (null: no usable anchor) */
  textOf(ids: number[]): string | null {
    const a = this.anchorToken();
    if (!a) return null;
    const t = this.tok.decode([a.id, ...ids]);
    return t.startsWith(a.text) ? t.slice(a.text.length) : null;
  }

  /**
   * The healing of a prompt whose last token is `last`, or null where there is none to do: a special token, a token
   * whose text is not whole characters (part of a UTF-8 sequence), or a text no other token starts with.
   */
  heal(last: number): Healing | null {
    const text = this.textOf([last]);
    if (!text || text.includes('\uFFFD')) return null;
    const { texts, ids } = this.table();
    // the tokens whose text starts with `text` are one run of the sorted texts
    let lo = 0,
      hi = texts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (texts[mid] < text) lo = mid + 1;
      else hi = mid;
    }
    let end = lo;
    while (end < texts.length && texts[end].startsWith(text)) end++;
    if (end - lo < 2) return null; // only the token itself: nothing to heal
    return { text, allowed: ids.slice(lo, end) };
  }

  private anchorToken(): { id: number; text: string } | null {
    if (this.anchor !== undefined) return this.anchor;
    const ids = this.tok.encode('a', false);
    const text = ids.length === 1 ? this.tok.decode(ids) : '';
    return (this.anchor = text ? { id: ids[0], text } : null);
  }

  private table(): { texts: string[]; ids: Int32Array } {
    if (this.sorted) return this.sorted;
    const all: [string, number][] = [];
    for (let id = 0; id < this.n; id++) {
      const t = this.textOf([id]);
      if (t && !t.includes('\uFFFD')) all.push([t, id]); // specials decode to nothing, and are never allowed
    }
    all.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] - y[1]));
    return (this.sorted = { texts: all.map((e) => e[0]), ids: Int32Array.from(all, (e) => e[1]) });
  }
}

/** logits of every id outside `allowed` set to −∞ (the first `n` entries are the vocabulary) */
export function keepOnly(logits: Float32Array, n: number, allowed: Int32Array): void {
  const keep = new Float32Array(allowed.length);
  allowed.forEach((id, i) => (keep[i] = logits[id]));
  logits.fill(-Infinity, 0, n);
  allowed.forEach((id, i) => (logits[id] = keep[i]));
}
