/**
 * Time to first token through the generation session: a 512-token prompt cold, and again after a prompt that
 * differs from it only in its last 16 tokens (what an editor sends on the next keystroke), from the prefix cache.
 */
import type { Backend } from '../engine/core/backend';
import { CORPUS } from '../engine/fixtures/corpus';
import { GenerationSession } from '../engine/tasks/serve/session';
import { openModel } from '../engine/tasks/session';

export interface FirstToken {
  promptTokens: number;
  coldMs: number;
  /** the prompt after one that differs in its last 16 tokens */
  cachedMs: number;
  cachedTokens: number;
}

const PROMPT_TOKENS = 512;
const CHANGED = 16;
const RUNS = 3;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Cold and cached time to first token for a model folder (its adapter none), median of three each. */
export async function firstToken(dir: string, be: Backend): Promise<FirstToken> {
  const { model, tokenizer } = openModel(dir, be);
  const text = CORPUS.repeat(Math.ceil((PROMPT_TOKENS * 8) / CORPUS.length));
  const ids = tokenizer.encode(text, false).slice(0, PROMPT_TOKENS);
  // the same first 496 tokens, and last 16 that differ from run to run
  const head = ids.slice(0, PROMPT_TOKENS - CHANGED);
  const prompt = (k: number) => tokenizer.decode([...head, ...ids.slice(k * CHANGED, (k + 1) * CHANGED)]);
  const cold: number[] = [];
  const cached: number[] = [];
  let promptTokens = 0;
  let cachedTokens = 0;
  for (let r = 0; r < RUNS; r++) {
    const fresh = new GenerationSession(model, tokenizer, { prefixCaches: 0 });
    const c = await fresh.complete({ prompt: prompt(r), maxTokens: 1 });
    cold.push(c.firstTokenMs);
    promptTokens = c.promptTokens;
  }
  const warm = new GenerationSession(model, tokenizer, { prefixCaches: 1 });
  await warm.complete({ prompt: prompt(RUNS), maxTokens: 1 });
  for (let r = 0; r < RUNS; r++) {
    const c = await warm.complete({ prompt: prompt(RUNS + 1 + r), maxTokens: 1 });
    cached.push(c.firstTokenMs);
    cachedTokens = c.cachedTokens;
  }
  warm.close();
  return { promptTokens, coldMs: median(cold), cachedMs: median(cached), cachedTokens };
}
