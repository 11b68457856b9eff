/**
 * A request's prompt as token ids that fit the model's context: plain text, fill-in-the-middle (prefix and suffix
 * around a cursor, where the tokenizer has FIM tokens), or a chat through the model's template.
 */
import { ConfigError, UserError } from '../../core/errors';
import type { ChatMessage, Tokenizer } from '../../formats/tokenizer';
import type { Healing, TokenHealer } from './heal';

/** the three tokens of fill-in-the-middle, in prefix-suffix-middle order */
export interface FimTokens {
  prefix: number;
  suffix: number;
  middle: number;
  /** tokens that end a middle in these tokenizers (file and repository separators, padding) */
  ends: number[];
}

const FIM_STYLES = [
  { prefix: '<|fim_prefix|>', suffix: '<|fim_suffix|>', middle: '<|fim_middle|>', ends: ['<|fim_pad|>', '<|file_sep|>', '<|repo_name|>'] }, // Qwen2.5-Coder
  { prefix: '<fim_prefix>', suffix: '<fim_suffix>', middle: '<fim_middle>', ends: ['<fim_pad>', '<file_sep>', '<|endoftext|>'] }, // StarCoder
  { prefix: '<PRE>', suffix: '<SUF>', middle: '<MID>', ends: ['<EOT>'] }, // CodeLlama
];

/** The tokenizer's FIM tokens, when it has a whole set of one style. */
export function fimTokens(tok: Tokenizer): FimTokens | null {
  for (const s of FIM_STYLES) {
    const [prefix, suffix, middle] = [s.prefix, s.suffix, s.middle].map((t) => tok.tokenId(t));
    if (prefix === undefined || suffix === undefined || middle === undefined) continue;
    const ends = s.ends.map((t) => tok.tokenId(t)).filter((id): id is number => id !== undefined);
    return { prefix, suffix, middle, ends };
  }
  return null;
}

export type PromptInput = { prompt: string; suffix?: string } | { messages: ChatMessage[] };

export interface PromptIds {
  ids: number[];
  /** the prompt was longer than the room in the context: its start (and a suffix's end) was left out */
  cut: boolean;
  /** fill-in-the-middle was used (a suffix was given and the tokenizer has FIM tokens) */
  fim: boolean;
  /** with a healer: the prompt's last token (the prefix's, with FIM) was taken back (heal.ts) */
  healed: Healing | null;
}

/** characters of a prompt kept per token of room before tokenizing (a token is far shorter): 50 MB is not tokenized whole */
const CHARS_PER_TOKEN_KEPT = 64;
/** of the room in the context, the share a FIM suffix may take; the prefix near the cursor matters more */
const SUFFIX_SHARE = 0.25;

/**
 * Token ids for the input, at most `room` of them, keeping the text nearest the cursor (the prompt's end). With a
 * healer, a plain prompt's or a FIM prefix's last token is taken back where it can be healed.
 */
export function promptIds(tok: Tokenizer, input: PromptInput, room: number, fim: FimTokens | null, healer?: TokenHealer): PromptIds {
  if (room < 1) throw new ConfigError(`max_tokens leaves no room for the prompt in the model's context`, 'max-new-tokens');
  const maxChars = room * CHARS_PER_TOKEN_KEPT;
  if ('messages' in input) {
    if (input.messages.length === 0) throw new UserError('messages is empty');
    // a rendered chat template carries its own special tokens (as transformers' apply_chat_template encodes it)
    const ids = tok.encode(tok.applyChat(input.messages, true), false);
    return { ids: ids.length > room ? ids.slice(ids.length - room) : ids, cut: ids.length > room, fim: false, healed: null };
  }
  const { prompt, suffix } = input;
  const head = prompt.length > maxChars ? prompt.slice(prompt.length - maxChars) : prompt;
  // a suffix of blanks only (the end of a file) says nothing the prefix does not
  if (suffix?.trim() && fim) {
    const tail = suffix.length > maxChars ? suffix.slice(0, maxChars) : suffix;
    let pre = tok.encode(head, false);
    let suf = tok.encode(tail, false);
    const fixed = 3;
    const sufRoom = Math.min(suf.length, Math.floor((room - fixed) * SUFFIX_SHARE));
    const preRoom = Math.max(0, room - fixed - sufRoom);
    const cut = head !== prompt || tail !== suffix || suf.length > sufRoom || pre.length > preRoom;
    suf = suf.slice(0, sufRoom);
    if (pre.length > preRoom) pre = pre.slice(pre.length - preRoom);
    const healed = pre.length && healer ? healer.heal(pre[pre.length - 1]) : null;
    if (healed) pre.pop();
    return { ids: [fim.prefix, ...pre, fim.suffix, ...suf, fim.middle], cut, fim: true, healed };
  }
  const ids = tok.encode(head);
  if (ids.length === 0) throw new UserError('the prompt is empty');
  const cut = ids.length > room || head !== prompt;
  const kept = ids.length > room ? ids.slice(ids.length - room) : ids;
  // one token stays: a model needs something to continue from
  const healed = kept.length > 1 && healer ? healer.heal(kept[kept.length - 1]) : null;
  if (healed) kept.pop();
  return { ids: kept, cut, fim: false, healed };
}
