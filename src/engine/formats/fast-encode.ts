/**
 * A faster `Tokenizer.encode` for byte-level BPE tokenizers (GPT-2, Llama 3, Qwen2 and their kin) that gives exactly
 * the ids @huggingface/tokenizers 0.2's own encode gives. `FastEncoder.for` returns undefined for any other shape,
 * and the library encodes those itself.
 *
 * Where the library's time goes (node --cpu-prof, 10 MB of generated code, 0.9 MB/s): a third in its BPE word
 * cache, an LRU whose every hit deletes and re-inserts a Map entry; a quarter in mapping each pre-token's UTF-8
 * bytes to characters (a TextEncoder call, Array.from and join per word); most of the rest in the arrays it makes
 * per section and per word (flatMap, map, the post-processor's concat). Code repeats its words endlessly, so this
 * keeps the ids of every pre-token (the text a regex match gives, before the byte-level mapping) in a plain Map:
 * a word seen before costs one match, one lookup and a push of its ids.
 *
 * What is re-written here follows Tokenizer.encode_text / tokenize_helper / encode of the library line by line:
 * the split on added tokens (longest match at each position, DictionarySplitter), their lstrip/rstrip, the
 * normalizer between the two splits, a token's id (added tokens first, then the vocabulary, then unk). What is the
 * library's own object, called as it calls it: the normalizer, every pre-tokenizer step before the last ByteLevel,
 * ByteLevel's regex and byte table, the BPE model (for words not seen yet) and the post-processor (read once, with
 * sentinel tokens, as "these tokens before, these after"). test/unit/tokenize.test.ts holds the two equal.
 */
import {
  BPE,
  ByteLevelPreTokenizer,
  Tokenizer as HfTokenizer,
  PreTokenizer,
  SequencePreTokenizer,
  SplitPreTokenizer,
} from '@huggingface/tokenizers';

interface Added {
  id: number;
  lstrip: boolean;
  rstrip: boolean;
}

type Trie = { [ch: string]: Trie } & { end?: string };

/** what this reads of tokenizer.json (checked by TextTokenizer before) and tokenizer_config.json */
interface TokenizerJson {
  added_tokens?: { id: number; content: string; special?: boolean; normalized?: boolean; lstrip?: boolean; rstrip?: boolean }[];
}
interface TokenizerConfig {
  remove_space?: unknown;
  do_lowercase_and_remove_accent?: unknown;
}

/**
 * The library's DictionarySplitter: at each position the longest added token starting there, else on by one code
 * unit. Positions where no added token can start are skipped with one regex search for their first code units.
 */
class Splitter {
  private trie: Trie = Object.create(null);
  private firsts: RegExp | undefined;

  constructor(words: string[]) {
    for (const w of words) {
      let node = this.trie;
      for (let i = 0; i < w.length; i++) node = node[w[i]] ??= Object.create(null);
      node.end = w;
    }
    const units = [...new Set(words.filter((w) => w.length > 0).map((w) => w.charCodeAt(0)))];
    if (units.length) this.firsts = new RegExp(`[${units.map((u) => `\\u${u.toString(16).padStart(4, '0')}`).join('')}]`, 'g');
  }

  split(text: string): string[] {
    const firsts = this.firsts;
    if (!firsts) return text.length ? [text] : [];
    const out: string[] = [];
    const n = text.length;
    let start = 0;
    let i = 0;
    while (i < n) {
      firsts.lastIndex = i;
      const next = firsts.exec(text);
      if (!next) break;
      i = next.index;
      let node: Trie | undefined = this.trie;
      let match: string | undefined;
      for (let j = i; j < n && (node = node[text[j]]); j++) if (node.end) match = node.end;
      if (match) {
        if (i > start) out.push(text.slice(start, i));
        out.push(match);
        i += match.length;
        start = i;
      } else i++;
    }
    if (start < n) out.push(text.slice(start));
    return out;
  }
}

export class FastEncoder {
  /** Words whose ids are kept: two generations of at most this many each, so memory stays bounded (settable for tests). */
  static cacheWords = 1 << 17;

  private added = new Map<string, Added>();
  /** the lengths of the added tokens' texts: most pieces of text are no added token, and are not hashed to find out */
  private addedLengths = new Set<number>();
  private raw: Splitter;
  private norm: Splitter;
  private steps: PreTokenizer[];
  /** a Split step right before ByteLevel (Qwen2's, Llama 3's), done here: its pieces go straight to the words */
  private split: { pattern: RegExp; invert: boolean } | undefined;
  private byteLevel: ByteLevelPreTokenizer;
  /** ByteLevel without its regex or a prefix space: each piece is one word as it is (Qwen2, Llama 3) */
  private plainByteLevel: boolean;
  private model: BPE;
  private normalizer: HfTokenizer['normalizer'];
  private vocab: Map<string, number>;
  private unkId: number | undefined;
  private around = new Map<boolean, { before: number[]; after: number[] }>();
  private young = new Map<string, number[]>();
  private old = new Map<string, number[]>();

  /** the fast path for this tokenizer, or undefined where it does not apply (the library encodes) */
  static for(tok: HfTokenizer, json: TokenizerJson, config: TokenizerConfig | undefined): FastEncoder | undefined {
    if (!(tok.model instanceof BPE) || tok.model.fuse_unk) return undefined;
    if (config?.remove_space === true || config?.do_lowercase_and_remove_accent) return undefined;
    let steps: PreTokenizer[];
    const pt = tok.pre_tokenizer;
    if (pt instanceof ByteLevelPreTokenizer) steps = [pt];
    else if (pt instanceof SequencePreTokenizer) steps = pt.tokenizers.filter((t): t is PreTokenizer => !!t);
    else return undefined;
    const last = steps.pop();
    if (!(last instanceof ByteLevelPreTokenizer) || !(last.pattern instanceof RegExp)) return undefined;
    const f = new FastEncoder(tok, json, steps, last);
    return f.readPostProcessor(tok) ? f : undefined;
  }

  private constructor(tok: HfTokenizer, json: TokenizerJson, steps: PreTokenizer[], byteLevel: ByteLevelPreTokenizer) {
    this.model = tok.model as BPE;
    this.vocab = this.model.tokens_to_ids;
    this.unkId = this.model.unk_token_id;
    const split = steps.at(-1);
    if (split instanceof SplitPreTokenizer && split.pattern && split.config.behavior?.toLowerCase() !== 'removed') {
      this.split = { pattern: split.pattern, invert: !!split.config.invert };
      steps = steps.slice(0, -1);
    }
    this.steps = steps;
    this.byteLevel = byteLevel;
    this.plainByteLevel = !byteLevel.use_regex && !byteLevel.add_prefix_space;
    // as the library's constructor builds added_tokens_map and its two splitters
    const rawWords: string[] = [];
    const normWords: string[] = [];
    for (const t of json.added_tokens ?? []) {
      const special = t.special ?? false;
      const a: Added = { id: t.id, lstrip: t.lstrip ?? false, rstrip: t.rstrip ?? false };
      this.added.set(t.content, a);
      if ((t.normalized ?? !special) && tok.normalizer !== null) {
        const n = tok.normalizer(t.content);
        normWords.push(n);
        this.added.set(n, a);
      } else rawWords.push(t.content);
    }
    for (const k of this.added.keys()) this.addedLengths.add(k.length);
    this.raw = new Splitter(rawWords);
    this.norm = new Splitter(normWords);
    this.normalizer = tok.normalizer;
  }

  /**
   * The post-processor's tokens before and after the text's, with and without special tokens; false when it does
   * anything else to the sequence than put tokens around it (then the library encodes).
   */
  private readPostProcessor(tok: HfTokenizer): boolean {
    const A = '\u0000lorakit-sentinel-A';
    const B = '\u0000lorakit-sentinel-B';
    for (const add of [true, false]) {
      const run = (xs: string[]): string[] => (tok.post_processor ? tok.post_processor([...xs], null, add).tokens : [...xs]);
      const none = run([]);
      const one = run([A]);
      const two = run([A, B]);
      const at = one.indexOf(A);
      if (at < 0 || none.includes(A) || none.includes(B)) return false;
      const before = one.slice(0, at);
      const after = one.slice(at + 1);
      const same = (got: string[], want: string[]) => got.length === want.length && got.every((x, i) => x === want[i]);
      if (!same(none, [...before, ...after]) || !same(two, [...before, A, B, ...after])) return false;
      this.around.set(add, { before: before.map((t) => this.idOf(t)), after: after.map((t) => this.idOf(t)) });
    }
    return true;
  }

  private addedOf(t: string): Added | undefined {
    return this.addedLengths.has(t.length) ? this.added.get(t) : undefined;
  }

  /** a token's id as the library's encode finds it (an unknown token without an unk id is undefined there too) */
  private idOf(t: string): number {
    return (this.added.get(t)?.id ?? this.vocab.get(t) ?? this.unkId) as number;
  }

  /** the library's lstrip/rstrip pass over one split (it sees its own changes as it goes) */
  private strip(parts: string[]): void {
    for (let i = 0; i < parts.length; i++) {
      const a = this.addedOf(parts[i]);
      if (!a) continue;
      if (a.lstrip && i > 0) parts[i - 1] = parts[i - 1].trimEnd();
      if (a.rstrip && i < parts.length - 1) parts[i + 1] = parts[i + 1].trimStart();
    }
  }

  encode(text: string, addSpecial = true): number[] {
    const { before, after } = this.around.get(addSpecial)!;
    const out = before.slice();
    const sections = this.raw.split(text);
    this.strip(sections);
    for (let s = 0; s < sections.length; s++) {
      let t = sections[s];
      if (t.length === 0) continue;
      const a = this.addedOf(t);
      if (a) {
        out.push(a.id);
        continue;
      }
      if (this.normalizer !== null) t = this.normalizer(t);
      if (t.length === 0) continue;
      const subs = this.norm.split(t);
      this.strip(subs);
      for (const sub of subs) {
        if (sub.length === 0) continue;
        const b = this.addedOf(sub);
        if (b) out.push(b.id);
        else this.words(sub, s, out);
      }
    }
    for (const id of after) out.push(id);
    return out;
  }

  /** the pre-tokenizer's words of one piece of text, their ids pushed onto out */
  private words(text: string, sectionIndex: number, out: number[]): void {
    let parts = [text];
    if (this.steps.length) {
      const options = { section_index: sectionIndex };
      for (const step of this.steps) parts = step.pre_tokenize(parts, options);
    }
    const split = this.split;
    for (const part of parts) {
      if (!split) this.byteLevelWords(part, out);
      else if (split.invert) {
        // Split with invert: the matches alone, empty ones dropped
        for (const m of part.matchAll(split.pattern)) if (m[0].length > 0) this.byteLevelWords(m[0], out);
      } else {
        // the library's regex_split: the text between matches and each (non-empty) match, in order. Matches are
        // disjoint, so when their lengths add up to the text's they tile it and there is nothing between them:
        // match() (strings only, no match objects) is enough, and it is the common case (Qwen2's and Llama 3's
        // regexes match every character)
        const ms = part.match(split.pattern) ?? [];
        let covered = 0;
        for (const m of ms) covered += m.length;
        if (covered === part.length) {
          if (this.plainByteLevel) {
            for (const m of ms) if (m.length > 0) this.word(m, out);
          } else for (const m of ms) if (m.length > 0) this.byteLevelWords(m, out);
          continue;
        }
        let prev = 0;
        for (const m of part.matchAll(split.pattern)) {
          const at = m.index!;
          if (prev < at) this.byteLevelWords(part.slice(prev, at), out);
          if (m[0].length > 0) this.byteLevelWords(m[0], out);
          prev = at + m[0].length;
        }
        if (prev < part.length) this.byteLevelWords(part.slice(prev), out);
      }
    }
  }

  /** ByteLevel's pre_tokenize_text on one piece, each word's ids pushed onto out */
  private byteLevelWords(part: string, out: number[]): void {
    const bl = this.byteLevel;
    if (bl.add_prefix_space && !part.startsWith(' ')) part = ' ' + part;
    if (!bl.use_regex) this.word(part, out);
    else {
      const ws = part.match(bl.pattern);
      if (ws) for (const w of ws) this.word(w, out);
    }
  }

  /** text's UTF-8 bytes written in the byte-level alphabet (one character a byte), as the vocabulary writes them */
  byteChars(text: string): string {
    const bl = this.byteLevel;
    return Array.from(bl.text_encoder.encode(text), (byte) => bl.byte_encoder[byte]).join('');
  }

  private word(w: string, out: number[]): void {
    let ids = this.young.get(w);
    if (ids === undefined) {
      ids = this.old.get(w);
      if (ids === undefined) {
        ids = this.model.encode([this.byteChars(w)]).map((t) => this.idOf(t));
      }
      if (this.young.size >= FastEncoder.cacheWords) {
        this.old = this.young;
        this.young = new Map();
      }
      this.young.set(w, ids);
    }
    for (let i = 0; i < ids.length; i++) out.push(ids[i]);
  }
}
