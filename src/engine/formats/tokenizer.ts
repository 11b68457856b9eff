/** `tokenizer.json` through @huggingface/tokenizers, and chat templates through @huggingface/jinja. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { UserError } from '../core/errors';
import { readJson } from '../core/fsx';
import { FastEncoder } from './fast-encode';

export interface ChatMessage {
  role: string;
  content: string;
}

/** What the engine needs of a tokenizer. */
export interface Tokenizer {
  readonly eosId: number | undefined;
  readonly bosId: number | undefined;
  readonly vocabSize: number;
  encode(text: string, addSpecial?: boolean): number[];
  decode(ids: number[], skipSpecial?: boolean): string;
  hasChatTemplate(): boolean;
  applyChat(messages: ChatMessage[], addGenerationPrompt?: boolean): string;
  /** the id of a token given by its text (an added or special token, or a vocabulary entry) */
  tokenId(text: string): number | undefined;
  /**
   * the ids of the added tokens: the special ones and the control tokens a model card may not mark special (Qwen2.5's
   * FIM markers, `<|file_sep|>`, tool-call tags are "special": false, and decode writes them out)
   */
  addedIds(): number[];
  /**
   * Each id's bytes written in byte-level BPE's alphabet, one character a byte (the vocabulary's own strings), for a
   * byte-level BPE tokenizer (GPT-2, Llama 3, Qwen2); null for any other kind
   */
  vocabPieces(): (string | undefined)[] | null;
}

/**
 * A model folder without tokenizer.json: pre-tokenized data (input_ids) still works; anything that needs text
 * gets one clear error.
 */
export class NoTokenizer implements Tokenizer {
  readonly eosId = undefined;
  readonly bosId = undefined;
  readonly vocabSize = 0;
  constructor(readonly dir: string) {}
  private missing(): never {
    throw new UserError(
      "no tokenizer.json: text data needs the model's tokenizer (pre-tokenized input_ids data works without one)",
      this.dir,
    );
  }
  encode(): number[] {
    return this.missing();
  }
  addedIds(): number[] {
    return [];
  }
  vocabPieces(): null {
    return null;
  }
  tokenId(): undefined {
    return undefined;
  }

  decode(): string {
    return this.missing();
  }
  hasChatTemplate(): boolean {
    return false;
  }
  applyChat(): string {
    return this.missing();
  }
}

/**
 * Token ids in tokenizer.json are checked before @huggingface/tokenizers sees them: it keeps tokens in an array
 * indexed by id and walks that array to its length, so one id of 2^31 makes loading loop for minutes (2^53: for
 * ever, synchronously, so not even SIGINT or SIGTERM gets through), and an id written as a string is silently
 * used as a number. Real vocabularies are dense (0..n−1, added tokens right after), so an id must be an integer
 * below twice the number of tokens listed (+ ID_SLACK for small vocabularies), and never reach MAX_TOKEN_ID
 * (2^24: 64 times the largest vocabulary in use; walking that far takes well under a second).
 */
export const MAX_TOKEN_ID = 2 ** 24;

/** the text of a token tokenizer_config.json names (a string, or an AddedToken object), if any */
export const tokenText = (t: unknown): string | undefined =>
  typeof t === 'string' ? t : typeof (t as { content?: unknown })?.content === 'string' ? (t as { content: string }).content : undefined;

/** chat_template as given: a template, or a list of named ones, whose "default" (else first) is taken */
export function pickChatTemplate(t: unknown): unknown {
  return Array.isArray(t) ? (t.find((x) => x?.name === 'default') ?? t[0])?.template : t;
}
const ID_SLACK = 1024;

function checkTokenIds(json: any, file: string): void {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new UserError('not a tokenizer: expected a JSON object', file);
  const vocab = json.model?.vocab;
  const added = json.added_tokens ?? [];
  if (!Array.isArray(added)) throw new UserError('"added_tokens" must be a list', file);
  // a Unigram vocab is a list of [token, score]: the ids are the positions, nothing to check
  const byName = vocab && typeof vocab === 'object' && !Array.isArray(vocab) ? Object.entries(vocab) : [];
  const count = (Array.isArray(vocab) ? vocab.length : byName.length) + added.length;
  const limit = Math.min(MAX_TOKEN_ID, 2 * count + ID_SLACK);
  const ok = (id: unknown) => Number.isSafeInteger(id) && (id as number) >= 0 && (id as number) < limit;
  const bad = (what: string, id: unknown) =>
    new UserError(
      `${what} has id ${JSON.stringify(id) ?? String(id)}: token ids must be integers from 0 to ${limit - 1} (below 2^24 and twice the ${count} tokens listed)`,
      file,
    );
  for (const [tok, id] of byName) if (!ok(id)) throw bad(`token ${shown(tok)} in model.vocab`, id);
  for (const [i, t] of added.entries()) {
    if (!t || typeof t !== 'object' || typeof t.content !== 'string')
      throw new UserError(`added_tokens[${i}] needs a string "content"`, file);
    if (!ok(t.id)) throw bad(`added token ${shown(t.content)}`, t.id);
  }
}

/** A FixedLength pre-tokenizer steps through the text `length` characters at a time: 0 or less never ends. */
function checkPreTokenizer(pt: any, file: string, depth = 0): void {
  if (!pt || typeof pt !== 'object' || depth > 8) return;
  if (pt.type === 'FixedLength' && !(Number.isSafeInteger(pt.length) && pt.length > 0))
    throw new UserError(`pre_tokenizer FixedLength needs a positive integer "length", got ${JSON.stringify(pt.length) ?? 'nothing'}`, file);
  if (Array.isArray(pt.pretokenizers)) for (const p of pt.pretokenizers) checkPreTokenizer(p, file, depth + 1);
}

/** a token for a message: quoted, short, on one line */
function shown(tok: string): string {
  const s = JSON.stringify(tok);
  return s.length > 40 ? `${s.slice(0, 37)}..."` : s;
}

export class TextTokenizer implements Tokenizer {
  private tok: HfTokenizer;
  /** the same ids as tok.encode, faster, for byte-level BPE tokenizers (formats/fast-encode.ts); else undefined */
  private fast: FastEncoder | undefined;
  /** compiled on first use, so a broken chat_template only matters to data and prompts that need it */
  private template?: Template;
  private readonly templateSource: unknown;
  readonly eosId: number | undefined;
  readonly bosId: number | undefined;
  readonly vocabSize: number;
  /** how long building it took, in ms: what a worker thread pays to build its own (data/tokenize-pool.ts) */
  readonly buildMs: number;

  constructor(
    readonly dir: string,
    readonly json: any,
    readonly config: any,
  ) {
    const t0 = performance.now();
    const file = path.join(dir, 'tokenizer.json');
    checkTokenIds(json, file);
    checkPreTokenizer(json.pre_tokenizer, file);
    try {
      this.tok = new HfTokenizer(json, config);
    } catch (e) {
      throw new UserError(`cannot load tokenizer (${oneLine(e)})`, file);
    }
    try {
      this.fast = FastEncoder.for(this.tok, json, config);
    } catch {
      this.fast = undefined; // a post-processor that fails on the probe: the library encodes, and reports it there
    }
    const id = (t: unknown) => {
      const s = tokenText(t);
      return s === undefined ? undefined : this.tok.token_to_id(s);
    };
    this.eosId = id(config.eos_token);
    this.bosId = id(config.bos_token);
    this.vocabSize = this.tok.get_vocab(true).size;
    this.templateSource = config.chat_template ?? undefined;
    this.buildMs = performance.now() - t0;
  }

  static load(dir: string): TextTokenizer {
    const file = path.join(dir, 'tokenizer.json');
    if (!fs.existsSync(file)) throw new UserError('no tokenizer.json (lorakit reads Hugging Face fast-tokenizer files)', dir);
    const cfgFile = path.join(dir, 'tokenizer_config.json');
    const config = fs.existsSync(cfgFile) ? readJson(cfgFile) : {};
    if (!config || typeof config !== 'object' || Array.isArray(config)) throw new UserError('expected a JSON object', cfgFile);
    return new TextTokenizer(dir, readJson(file), config);
  }

  /** ids of text, with the tokenizer's special tokens (e.g. BOS) unless addSpecial is false */
  encode(text: string, addSpecial = true): number[] {
    const fast = this.fast;
    if (fast) return this.guard(() => fast.encode(text, addSpecial));
    return this.encodeReference(text, addSpecial);
  }

  /** encode through @huggingface/tokenizers alone: the spec the fast path is held to (tests, bench) */
  encodeReference(text: string, addSpecial = true): number[] {
    return this.guard(() => this.tok.encode(text, { add_special_tokens: addSpecial }).ids);
  }

  tokenId(text: string): number | undefined {
    return this.tok.token_to_id(text) ?? undefined;
  }

  addedIds(): number[] {
    const added: unknown = this.json.added_tokens;
    if (!Array.isArray(added)) return [];
    return added.filter((t) => t && Number.isSafeInteger(t.id)).map((t) => t.id as number);
  }

  vocabPieces(): (string | undefined)[] | null {
    const fast = this.fast;
    if (!fast || this.json.decoder?.type !== 'ByteLevel') return null;
    const out: (string | undefined)[] = new Array(this.vocabSize);
    const vocab = this.json.model?.vocab ?? {};
    for (const piece in vocab) out[vocab[piece]] = piece;
    // added tokens hold their text as it is: written in the alphabet here
    for (const t of Array.isArray(this.json.added_tokens) ? this.json.added_tokens : [])
      if (t && typeof t.content === 'string' && Number.isSafeInteger(t.id)) out[t.id] = fast.byteChars(t.content);
    return out;
  }

  /** does encode take the fast path (a byte-level BPE tokenizer) */
  get fastPath(): boolean {
    return this.fast !== undefined;
  }

  decode(ids: number[], skipSpecial = true): string {
    return this.guard(() => this.tok.decode(ids, { skip_special_tokens: skipSpecial }));
  }

  /** a tokenizer.json that loads can still be malformed where only encoding looks (a post-processor, a decoder) */
  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError(`the tokenizer failed (${oneLine(e)}): check tokenizer.json`, path.join(this.dir, 'tokenizer.json'));
    }
  }

  hasChatTemplate(): boolean {
    return this.templateSource !== undefined;
  }

  /** the chat template rendered as text */
  applyChat(messages: ChatMessage[], addGenerationPrompt = false): string {
    const file = path.join(this.dir, 'tokenizer_config.json');
    const template = this.compiled(file);
    try {
      return template.render({
        messages,
        add_generation_prompt: addGenerationPrompt,
        bos_token: tokenText(this.config.bos_token) ?? '',
        eos_token: tokenText(this.config.eos_token) ?? '',
      });
    } catch (e) {
      // templates raise_exception() on conversations they do not accept (e.g. roles that do not alternate)
      throw new UserError(`the chat_template failed on a conversation (${oneLine(e)})`, file);
    }
  }

  private compiled(file: string): Template {
    if (this.template) return this.template;
    if (this.templateSource === undefined)
      throw new UserError('the tokenizer has no chat_template, so "messages" data cannot be used', file);
    const src = pickChatTemplate(this.templateSource);
    if (typeof src !== 'string') throw new UserError('chat_template must be a template string or a list of {name, template}', file);
    try {
      this.template = new Template(src);
    } catch (e) {
      throw new UserError(`chat_template is not a valid template (${oneLine(e)})`, file);
    }
    return this.template;
  }
}

/** an error's message, on one line and not too long, for a UserError that wraps it */
function oneLine(e: any): string {
  const m = String(e?.message ?? e)
    .replace(/\s+/g, ' ')
    .trim();
  return m.length > 200 ? `${m.slice(0, 197)}...` : m;
}
