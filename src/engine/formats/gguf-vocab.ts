/**
 * A byte-level BPE tokenizer (GPT-2 style: Llama 3, Qwen, lorakit's fixtures) as llama.cpp's `tokenizer.ggml.*`
 * metadata, the way convert_hf_to_gguf.py writes it: every id up to the model's vocab_size with its type (the
 * ids no token has become `[PADi]`, unused), the merges, the pre-tokenizer by name, the special token ids, whether
 * BOS/EOS are added, and the chat template.
 */
import * as path from 'node:path';
import { UserError } from '../core/errors';
import type { ModelSpec } from './config';
import { eosIds } from './config';
import { KvValue, bool, i32s, str, strs, u32 } from './gguf';
import { type TextTokenizer, pickChatTemplate, tokenText } from './tokenizer';

/** llama.cpp's token types */
const NORMAL = 1;
const CONTROL = 3;
const USER_DEFINED = 4;
const UNUSED = 5;

/**
 * The pre-tokenizer regexes llama.cpp knows by name (tokenizer.ggml.pre); a tokenizer whose split is not one of
 * these would be tokenized differently by llama.cpp, so it is refused rather than written wrong.
 */
const KNOWN_SPLITS: Record<string, string> = {
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+":
    'llama-bpe',
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+":
    'qwen2',
};

/** tokenizer.ggml.pre for a tokenizer.json pre_tokenizer */
function preTokenizerName(pt: any, file: string): string {
  const byteLevel = (p: any) => p?.type === 'ByteLevel' && !p.add_prefix_space;
  // GPT-2's own: ByteLevel splitting with its built-in regex
  if (byteLevel(pt) && pt.use_regex !== false) return 'gpt-2';
  const parts: any[] = pt?.type === 'Sequence' && Array.isArray(pt.pretokenizers) ? pt.pretokenizers : [];
  if (parts.length === 2 && parts[0]?.type === 'Split' && byteLevel(parts[1]) && parts[1].use_regex === false) {
    const name = KNOWN_SPLITS[parts[0].pattern?.Regex];
    if (name) return name;
  }
  throw new UserError(
    'this pre_tokenizer is not one llama.cpp knows by name (GPT-2, Llama 3 or Qwen2 byte-level splitting): the GGUF would tokenize differently',
    file,
  );
}

/** tokens that look special although not marked so (convert_hf_to_gguf.py's does_token_look_special) */
const looksSpecial = (t: string) => (t.startsWith('<|') && t.endsWith('|>')) || ['<pad>', '<mask>'].includes(t);

/** the chat template string (a list of named templates gives its "default", else its first) */
export function chatTemplateOf(config: any): string | undefined {
  const t = pickChatTemplate(config?.chat_template);
  return typeof t === 'string' ? t : undefined;
}

export function vocabMetadata(tok: TextTokenizer, spec: ModelSpec): [string, KvValue][] {
  const file = path.join(tok.dir, 'tokenizer.json');
  const json = tok.json;
  const model = json.model;
  if (model?.type !== 'BPE' || json.decoder?.type !== 'ByteLevel')
    throw new UserError(
      `only byte-level BPE tokenizers (GPT-2 style, as Llama 3 and Qwen use) can be written to GGUF; this one is ${model?.type ?? 'unknown'} with a ${json.decoder?.type ?? 'missing'} decoder`,
      file,
    );
  const pre = preTokenizerName(json.pre_tokenizer, file);
  const V = spec.vocabSize;
  const tokens: string[] = new Array(V);
  const types = new Int32Array(V);
  const put = (id: number, t: string, type: number) => {
    if (id >= V) throw new UserError(`token ${JSON.stringify(t)} has id ${id}, beyond the model's vocab_size ${V}`, file);
    tokens[id] = t;
    types[id] = type;
  };
  for (const [t, id] of Object.entries(model.vocab as Record<string, number>)) put(id, t, looksSpecial(t) ? CONTROL : NORMAL);
  for (const a of json.added_tokens ?? []) put(a.id, a.content, a.special || looksSpecial(a.content) ? CONTROL : USER_DEFINED);
  for (let i = 0; i < V; i++)
    if (tokens[i] === undefined) {
      tokens[i] = `[PAD${i}]`;
      types[i] = UNUSED;
    }
  const merges = ((model.merges ?? []) as (string | [string, string])[]).map((m) => (Array.isArray(m) ? m.join(' ') : m));

  const cfg = tok.config;
  const idOf = (t: unknown): number | undefined => {
    const s = tokenText(t);
    if (s === undefined) return undefined;
    const id = tokens.indexOf(s);
    return id >= 0 ? id : undefined;
  };
  const bos = idOf(cfg.bos_token) ?? spec.bosTokenId;
  const eos = idOf(cfg.eos_token) ?? eosIds(spec)[0];
  const pad = idOf(cfg.pad_token);
  // what the post-processor puts around a text, where tokenizer_config.json does not say
  const single: any[] = json.post_processor?.type === 'TemplateProcessing' ? (json.post_processor.single ?? []) : [];
  const addsBos = typeof cfg.add_bos_token === 'boolean' ? cfg.add_bos_token : single[0]?.SpecialToken !== undefined;
  const addsEos = typeof cfg.add_eos_token === 'boolean' ? cfg.add_eos_token : single.at(-1)?.SpecialToken !== undefined;

  const kv: [string, KvValue][] = [
    ['tokenizer.ggml.model', str('gpt2')],
    ['tokenizer.ggml.pre', str(pre)],
    ['tokenizer.ggml.tokens', strs(tokens)],
    ['tokenizer.ggml.token_type', i32s(types)],
    ['tokenizer.ggml.merges', strs(merges)],
  ];
  if (bos !== undefined) kv.push(['tokenizer.ggml.bos_token_id', u32(bos)]);
  if (eos !== undefined) kv.push(['tokenizer.ggml.eos_token_id', u32(eos)]);
  if (pad !== undefined) kv.push(['tokenizer.ggml.padding_token_id', u32(pad)]);
  kv.push(['tokenizer.ggml.add_bos_token', bool(addsBos && bos !== undefined)], ['tokenizer.ggml.add_eos_token', bool(addsEos)]);
  const template = chatTemplateOf(cfg);
  if (template !== undefined) kv.push(['tokenizer.chat_template', str(template)]);
  return kv;
}
