/** Text generation with a KV cache: greedy, or temperature with top-p (nucleus) sampling, adapter on or off. */
import { ConfigError } from '../core/errors';
import type { Tokenizer } from '../formats/tokenizer';
import type { LlamaModel } from '../model/llama';
import { GenerationSession } from './serve/session';

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

export { sample } from './serve/sample';

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

/** Generate a completion, yielding to the event loop between tokens so that a caller can cancel or stream. */
export async function generate(model: LlamaModel, tok: Tokenizer, prompt: string, o: GenerateOptions = {}): Promise<Generation> {
  const maxNew = o.maxNewTokens ?? 64;
  if (!(Number.isInteger(maxNew) && maxNew >= 0))
    throw new ConfigError(`--max-new-tokens must be a whole number ≥ 0, got ${maxNew}`, 'max-new-tokens');
  if (!(o.temperature === undefined || o.temperature >= 0))
    throw new ConfigError(`--temperature must be ≥ 0, got ${o.temperature}`, 'temperature');
  if (!(o.topP === undefined || (o.topP > 0 && o.topP <= 1))) throw new ConfigError(`--top-p must be in (0, 1], got ${o.topP}`, 'top-p');
  if (maxNew >= model.spec.maxPositions)
    throw new ConfigError(
      `--max-new-tokens ${maxNew} leaves no room for the prompt in the model's context of ${model.spec.maxPositions} tokens (max_position_embeddings)`,
      'max-new-tokens',
    );
  // the model's own adapter (loaded with it), under a name for the session; the model keeps it afterwards
  const saved = { adapter: model.adapter, enabled: model.adapterEnabled };
  const own = model.adapter && model.adapterEnabled ? model.adapter : null;
  const session = new GenerationSession(model, tok, { prefixCaches: 0, modelDir: o.modelDir });
  if (own) session.useAdapter('adapter', own, o.adapterDir ?? '');
  try {
    const c = await session.complete({
      ...(o.chat ? { messages: [{ role: 'user', content: prompt }] } : { prompt }),
      adapter: own ? 'adapter' : null,
      maxTokens: maxNew,
      temperature: o.temperature ?? 0,
      topP: o.topP ?? 1,
      seed: o.seed ?? 0,
      signal: o.signal,
      onText: o.onText,
    });
    return {
      text: c.text,
      ids: c.ids,
      promptTokens: c.promptTokens,
      newTokens: c.completionTokens,
      tokensPerS: c.tokensPerS,
      promptCut: c.promptCut,
      context: c.context,
    };
  } finally {
    model.adapter = saved.adapter;
    model.adapterEnabled = saved.enabled;
  }
}
