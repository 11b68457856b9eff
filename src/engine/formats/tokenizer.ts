/** `tokenizer.json` through @huggingface/tokenizers, and chat templates through @huggingface/jinja. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { UserError } from '../core/errors';
import { readJson } from '../core/fsx';

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
    throw new UserError('no tokenizer.json: text data needs the model\'s tokenizer (pre-tokenized input_ids data works without one)', this.dir);
  }
  encode(): number[] {
    return this.missing();
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

export class TextTokenizer implements Tokenizer {
  private tok: HfTokenizer;
  private template?: Template;
  readonly eosId: number | undefined;
  readonly bosId: number | undefined;
  readonly vocabSize: number;

  constructor(readonly dir: string, readonly json: any, readonly config: any) {
    const file = path.join(dir, 'tokenizer.json');
    try {
      this.tok = new HfTokenizer(json, config);
    } catch (e: any) {
      throw new UserError(`cannot load tokenizer (${e.message})`, file);
    }
    const id = (t: unknown) => {
      const s = typeof t === 'string' ? t : (t as any)?.content;
      return typeof s === 'string' ? this.tok.token_to_id(s) : undefined;
    };
    this.eosId = id(config.eos_token);
    this.bosId = id(config.bos_token);
    this.vocabSize = this.tok.get_vocab(true).size;
    const tpl = config.chat_template;
    if (typeof tpl === 'string') this.template = new Template(tpl);
    else if (Array.isArray(tpl)) {
      const def = tpl.find((t: any) => t.name === 'default') ?? tpl[0];
      if (def?.template) this.template = new Template(def.template);
    }
  }

  static load(dir: string): TextTokenizer {
    const file = path.join(dir, 'tokenizer.json');
    if (!fs.existsSync(file)) throw new UserError('no tokenizer.json (lorakit reads Hugging Face fast-tokenizer files)', dir);
    const cfgFile = path.join(dir, 'tokenizer_config.json');
    const config = fs.existsSync(cfgFile) ? readJson(cfgFile) : {};
    return new TextTokenizer(dir, readJson(file), config);
  }

  /** ids of text, with the tokenizer's special tokens (e.g. BOS) unless addSpecial is false */
  encode(text: string, addSpecial = true): number[] {
    return this.tok.encode(text, { add_special_tokens: addSpecial }).ids;
  }

  decode(ids: number[], skipSpecial = true): string {
    return this.tok.decode(ids, { skip_special_tokens: skipSpecial });
  }

  hasChatTemplate(): boolean {
    return !!this.template;
  }

  /** the chat template rendered as text */
  applyChat(messages: ChatMessage[], addGenerationPrompt = false): string {
    if (!this.template) throw new UserError('the tokenizer has no chat_template, so "messages" data cannot be used', path.join(this.dir, 'tokenizer_config.json'));
    const str = (t: unknown) => (typeof t === 'string' ? t : (t as any)?.content ?? '');
    return this.template.render({
      messages,
      add_generation_prompt: addGenerationPrompt,
      bos_token: str(this.config.bos_token),
      eos_token: str(this.config.eos_token),
    });
  }
}
