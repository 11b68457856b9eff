/**
 * The request bodies the server takes, checked with zod before anything runs. Unknown fields are dropped (clients
 * send many); fields that would change the answer in a way lorakit cannot honour (n > 1, logprobs, tools, images…)
 * are refused by name rather than ignored.
 */
import { z } from 'zod';
import { ApiError } from './errors';

/** a field lorakit does not support: accepted only when absent, null, false or empty */
const unsupported = (what: string) =>
  z
    .unknown()
    .refine(
      (v) => v == null || v === false || v === '' || (Array.isArray(v) && v.length === 0) || (isPlain(v) && Object.keys(v).length === 0),
      `${what} is not supported by lorakit serve`,
    );
const isPlain = (v: unknown): v is object => typeof v === 'object' && v !== null && !Array.isArray(v);

const count = z.int().min(0);
const seed = z.int().nullish();

/** sampling and streaming, as OpenAI's completions and chat completions both take them */
const openaiSampling = {
  model: z.string().min(1),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  stop: z
    .union([z.string(), z.array(z.string()).max(4, 'at most 4 stop sequences')], 'stop must be a string or an array of strings')
    .nullish(),
  seed,
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  n: z.literal(1, 'only n = 1 is supported').nullish(),
  logprobs: unsupported('logprobs'),
  top_logprobs: unsupported('top_logprobs'),
  logit_bias: unsupported('logit_bias'),
  // accepted and ignored: they nudge sampling, and clients send their zero defaults
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  user: z.string().nullish(),
};

export const CompletionBody = z.object({
  ...openaiSampling,
  prompt: z.union(
    [z.string(), z.array(z.string()).length(1, 'one prompt per request')],
    'prompt must be a string or a one-element array of strings (token ids are not supported)',
  ),
  suffix: z.string().nullish(),
  max_tokens: count.nullish(),
  echo: unsupported('echo'),
  best_of: z.literal(1, 'only best_of = 1 is supported').nullish(),
});
export type CompletionBody = z.infer<typeof CompletionBody>;

const TextPart = z.object({ type: z.literal('text', 'only text content parts are supported'), text: z.string() });

export const ChatMessageBody = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant'], 'role must be system, developer, user or assistant (tools are not supported)'),
  content: z.union([z.string(), z.array(TextPart)], 'content must be a string or an array of text parts').nullish(),
  name: z.string().nullish(),
  tool_calls: unsupported('tool_calls'),
});

export const ChatBody = z.object({
  ...openaiSampling,
  messages: z.array(ChatMessageBody).min(1, 'messages is empty'),
  max_tokens: count.nullish(),
  max_completion_tokens: count.nullish(),
  tools: unsupported('tools'),
  functions: unsupported('functions'),
  response_format: z.object({ type: z.literal('text', 'only response_format text is supported') }).nullish(),
});
export type ChatBody = z.infer<typeof ChatBody>;

export const LoadAdapterBody = z.object({
  lora_name: z.string().trim().min(1),
  lora_path: z.string().min(1),
  /** replace an adapter of that name (vLLM's flag); without it, a name in use is refused */
  load_inplace: z.boolean().nullish(),
});

export const UnloadAdapterBody = z.object({ lora_name: z.string().min(1) });

/** Ollama's options that lorakit honours; the others (num_ctx, top_k, repeat_penalty…) are accepted and ignored */
const OllamaOptions = z
  .object({
    temperature: z.number().min(0).nullish(),
    top_p: z.number().min(0).max(1).nullish(),
    num_predict: z.int().min(-2).nullish(),
    seed,
    stop: z.array(z.string()).nullish(),
  })
  .nullish();

const ollamaCommon = {
  model: z.string().min(1),
  stream: z.boolean().nullish(),
  options: OllamaOptions,
  format: unsupported('format'),
  images: unsupported('images'),
  tools: unsupported('tools'),
};

export const GenerateBody = z.object({
  ...ollamaCommon,
  prompt: z.string().nullish(),
  suffix: z.string().nullish(),
  system: z.string().nullish(),
  raw: z.boolean().nullish(),
  template: unsupported('template'),
});
export type GenerateBody = z.infer<typeof GenerateBody>;

export const OllamaChatBody = z.object({
  ...ollamaCommon,
  messages: z
    .array(
      z.object({
        role: z.enum(['system', 'user', 'assistant'], 'role must be system, user or assistant (tools are not supported)'),
        content: z.string(),
        images: unsupported('images'),
      }),
    )
    .nullish(),
});
export type OllamaChatBody = z.infer<typeof OllamaChatBody>;

export const ShowBody = z.object({ model: z.string().min(1).nullish(), name: z.string().min(1).nullish() });

/** The body checked against a schema, or a 400 that names the first field at fault. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  if (issue.path.length === 0) throw new ApiError(400, 'the body must be a JSON object', 'invalid_request_error', 'invalid_body');
  const param = issue.path.join('.');
  const missing = issue.code === 'invalid_type' && /received undefined$/.test(issue.message);
  const more = r.error.issues.length > 1 ? ` (and ${r.error.issues.length - 1} more)` : '';
  throw new ApiError(
    400,
    missing ? `${param} is required` : `${param}: ${issue.message}${more}`,
    'invalid_request_error',
    'invalid_value',
    param,
  );
}
