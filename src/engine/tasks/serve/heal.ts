/**
 * Token healing for completions: a prompt cut at the cursor often ends inside what the model would write as one
 * token (`return` before ` zebra`, a lone trailing space, half an identifier), so its last token is one the model
 * rarely saw there. The last token is taken back, and the first new token must be one whose text starts with the
 * text taken back; the completion reported is what comes after that text. (As llama.cpp's and guidance's token
 * healing do, over one token.)
 *
 * Tokens are compared by their bytes where the tokenizer is byte-level BPE (read from its vocabulary), else by their
 * texts decoded after a fixed anchor token (`decode([anchor, id])` less the anchor's text), so that a decoder that
 * drops a sequence's leading space (SentencePiece's) keeps it here.
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
  /** every token's key (ids below `n`), sorted, built on first use (table()) */
  private sorted?: { texts: string[]; ids: Int32Array };

  constructor(
    private readonly tok: Tokenizer,
    /** the vocabulary the logits cover */
    private readonly n: number,
  ) {
    this.special = new Set(tok.addedIds());
  }

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
    if (this.special.has(last)) return null;
    const text = this.textOf([last]);
    if (!text || text.includes('\uFFFD')) return null;
    const { texts, ids } = this.table();
    const key = this.pieces ? this.pieces[last] : text;
    if (!key) return null;
    // the tokens whose key starts with this one's are one run of the sorted keys
    let lo = 0,
      hi = texts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (texts[mid] < key) lo = mid + 1;
      else hi = mid;
    }
    let end = lo;
    while (end < texts.length && texts[end].startsWith(key)) end++;
    if (end - lo < 2) return null; // only the token itself: nothing to heal
    return { text, allowed: ids.slice(lo, end) };
  }

  /** the added tokens (specials and control tokens): never healed, never allowed */
  private readonly special: Set<number>;

  private anchorToken(): { id: number; text: string } | null {
    if (this.anchor !== undefined) return this.anchor;
    const ids = this.tok.encode('a', false);
    const text = ids.length === 1 ? this.tok.decode(ids) : '';
    return (this.anchor = text ? { id: ids[0], text } : null);
  }

  /**
   * Every token's key, sorted: for a byte-level BPE tokenizer its bytes, as the vocabulary writes them (one character
   * a byte, so prefixes of keys are prefixes of bytes; 151k tokens in about 0.2 s here), else its text decoded after
   * the anchor (about 15 µs a token through the tokenizers library: seconds for a large vocabulary, once a session).
   */
  private table(): { texts: string[]; ids: Int32Array } {
    if (this.sorted) return this.sorted;
    const pieces = this.tok.vocabPieces();
    this.pieces = pieces;
    const keys: (string | null | undefined)[] = new Array(this.n);
    const ids: number[] = [];
    for (let id = 0; id < this.n; id++) {
      if (this.special.has(id)) continue;
      const k = pieces ? pieces[id] : this.textOf([id]);
      if (!k || (!pieces && k.includes('\uFFFD'))) continue;
      keys[id] = k;
      ids.push(id);
    }
    ids.sort((a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : a - b));
    return (this.sorted = { texts: ids.map((id) => keys[id]!), ids: Int32Array.from(ids) });
  }
  /** the byte-level vocabulary's strings, when the table was built from them */
  private pieces: (string | undefined)[] | null = null;
}

/** logits of every id outside `allowed` set to −∞ (the first `n` entries are the vocabulary) */
export function keepOnly(logits: Float32Array, n: number, allowed: Int32Array): void {
  const keep = new Float32Array(allowed.length);
  allowed.forEach((id, i) => (keep[i] = logits[id]));
  logits.fill(-Infinity, 0, n);
  allowed.forEach((id, i) => (logits[id] = keep[i]));
}
