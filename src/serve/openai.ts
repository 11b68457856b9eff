/**
 * OpenAI's API, as much of it as one model with adapters can answer: /v1/models, /v1/completions (with `suffix`
 * for fill-in-the-middle), /v1/chat/completions, streamed or whole; and vLLM's /v1/load_lora_adapter and
 * /v1/unload_lora_adapter. A request's `model` is the base model's id or an adapter's name.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { UserError, type ChatMessage, type Completion, type CompletionRequest } from '../engine';
import { ApiError, notFound } from './errors';
import type { Generations } from './generation';
import { ChatBody, CompletionBody, LoadAdapterBody, UnloadAdapterBody, parseBody } from './schemas';
import { EventStream } from './sse';

export function openaiRoutes(app: FastifyInstance, g: Generations, created: number): void {
  app.get('/v1/models', async () => ({ object: 'list', data: models(g, created) }));
  app.get('/v1/models/*', async (request) => {
    const id = (request.params as Record<string, string>)['*'];
    const m = models(g, created).find((m) => m.id === id);
    if (!m) throw notFound(`the model "${id}" does not exist`, 'model_not_found');
    return m;
  });
  app.post('/v1/completions', (request, reply) => completions(g, request, reply));
  app.post('/v1/chat/completions', (request, reply) => chat(g, request, reply));
  app.post('/v1/load_lora_adapter', async (request) => loadAdapter(g, request.body));
  app.post('/v1/unload_lora_adapter', async (request) => unloadAdapter(g, request.body));
}

/** the base model, then each adapter (vLLM's shape: an adapter's root is its folder, its parent the base) */
function models(g: Generations, created: number) {
  const base = g.o.modelId;
  return [
    { id: base, object: 'model', created, owned_by: 'lorakit', root: base, parent: null },
    ...g.session.adapterNames().map((name) => ({
      id: name,
      object: 'model',
      created,
      owned_by: 'lorakit',
      root: g.session.info(name)?.dir ?? name,
      parent: base,
    })),
  ];
}

/** what completions and chat completions share: the adapter and sampling, with OpenAI's defaults (temperature 1) */
function common(g: Generations, b: CompletionBody | ChatBody): CompletionRequest {
  const greedy = b.top_p === 0; // the smallest nucleus: the most likely token
  return {
    adapter: g.adapterOf(b.model),
    temperature: greedy ? 0 : (b.temperature ?? 1),
    topP: greedy ? 1 : (b.top_p ?? 1),
    seed: b.seed ?? undefined,
    stop: (typeof b.stop === 'string' ? [b.stop] : (b.stop ?? [])).filter((s) => s.length > 0),
  };
}

async function completions(g: Generations, request: FastifyRequest, reply: FastifyReply) {
  const b = parseBody(CompletionBody, request.body);
  const req: CompletionRequest = {
    ...common(g, b),
    prompt: typeof b.prompt === 'string' ? b.prompt : b.prompt[0],
    suffix: b.suffix ?? undefined,
    maxTokens: b.max_tokens ?? 16, // OpenAI's default for completions
  };
  const choice = (text: string, finish: string | null) => ({ index: 0, text, logprobs: null, finish_reason: finish });
  return answer(g, reply, req, b, {
    id: `cmpl-${randomId()}`,
    object: 'text_completion',
    chunkObject: 'text_completion',
    whole: choice,
    piece: (text, finish) => choice(text ?? '', finish),
    what: 'completion',
  });
}

async function chat(g: Generations, request: FastifyRequest, reply: FastifyReply) {
  const b = parseBody(ChatBody, request.body);
  const messages: ChatMessage[] = b.messages.map((m) => ({
    role: m.role === 'developer' ? 'system' : m.role,
    content: typeof m.content === 'string' ? m.content : (m.content ?? []).map((p) => p.text).join('\n'),
  }));
  const req: CompletionRequest = { ...common(g, b), messages };
  req.maxTokens = b.max_completion_tokens ?? b.max_tokens ?? g.roomAfterPrompt(req);
  let first = true;
  return answer(g, reply, req, b, {
    id: `chatcmpl-${randomId()}`,
    object: 'chat.completion',
    chunkObject: 'chat.completion.chunk',
    whole: (text, finish) => ({
      index: 0,
      message: { role: 'assistant', content: text, refusal: null },
      logprobs: null,
      finish_reason: finish,
    }),
    piece: (text, finish) => {
      const delta = text === null ? {} : first ? { role: 'assistant', content: text } : { content: text };
      first = false;
      return { index: 0, delta, logprobs: null, finish_reason: finish };
    },
    what: 'chat',
  });
}

interface AnswerShape {
  id: string;
  object: string;
  chunkObject: string;
  /** the choice of a whole answer */
  whole(text: string, finish: string): object;
  /** the choice of a streamed chunk: a piece of text, or (null) the end */
  piece(text: string | null, finish: string | null): object;
  /** the kind of request, for the log */
  what: string;
}

/** Run the generation and answer it whole, or stream it as chunks (and a usage chunk when asked). */
async function answer(g: Generations, reply: FastifyReply, req: CompletionRequest, b: CompletionBody | ChatBody, shape: AnswerShape) {
  const head = { id: shape.id, object: shape.object, created: Math.floor(Date.now() / 1000), model: b.model };
  if (!b.stream) {
    const c = await g.run(reply, req, shape.what);
    return { ...head, choices: [shape.whole(c.text, finishReason(c))], usage: usage(c) };
  }
  const s = new EventStream(reply, 'sse');
  const withUsage = !!b.stream_options?.include_usage;
  const chunk = (choices: object[], u: object | null = null) => ({
    ...head,
    object: shape.chunkObject,
    choices,
    ...(withUsage ? { usage: u } : {}),
  });
  try {
    const c = await g.run(reply, { ...req, onText: (d) => s.send(chunk([shape.piece(d, null)])) }, shape.what);
    s.send(chunk([shape.piece(null, finishReason(c))]));
    if (withUsage) s.send(chunk([], usage(c)));
    s.end();
  } catch (e) {
    s.fail(e, reply.request.url, g.o.log);
  }
  return reply;
}

const finishReason = (c: Completion) => (c.finishReason === 'length' ? 'length' : 'stop');

const usage = (c: Completion) => ({
  prompt_tokens: c.promptTokens,
  completion_tokens: c.completionTokens,
  total_tokens: c.promptTokens + c.completionTokens,
  prompt_tokens_details: { cached_tokens: c.cachedTokens },
});

const randomId = () => randomUUID().replace(/-/g, '');

/** vLLM's runtime adapter loading: a name in use is refused unless load_inplace; a bad folder is a 400 that says why */
function loadAdapter(g: Generations, body: unknown) {
  const b = parseBody(LoadAdapterBody, body);
  const name = b.lora_name;
  if (name === g.o.modelId)
    throw new ApiError(400, `"${name}" is the base model's id: choose another name`, undefined, 'invalid_value', 'lora_name');
  if (g.session.info(name) && !b.load_inplace)
    throw new ApiError(
      400,
      `an adapter named "${name}" is loaded already: unload it first, or pass load_inplace: true`,
      undefined,
      'adapter_exists',
      'lora_name',
    );
  let info;
  try {
    info = g.session.loadAdapter(name, b.lora_path);
  } catch (e) {
    // the folder's fault (missing, not an adapter, made for another model), or the file system's (ENOENT, EACCES, EISDIR)
    if (e instanceof UserError || typeof (e as NodeJS.ErrnoException).code === 'string')
      throw new ApiError(400, `lora_path: ${(e as Error).message}`, 'invalid_request_error', 'invalid_adapter', 'lora_path');
    throw e;
  }
  g.o.log(`loaded adapter "${name}" from ${info.dir} (rank ${info.rank}, ${info.modules} modules)`);
  return {
    object: 'lora_adapter',
    id: name,
    root: info.dir,
    rank: info.rank,
    modules: info.modules,
    message: `Success: LoRA adapter '${name}' added successfully.`,
  };
}

function unloadAdapter(g: Generations, body: unknown) {
  const { lora_name: name } = parseBody(UnloadAdapterBody, body);
  if (name === g.o.modelId)
    throw new ApiError(400, `"${name}" is the base model: it cannot be unloaded`, undefined, 'invalid_value', 'lora_name');
  if (!g.session.unloadAdapter(name)) throw notFound(`no adapter named "${name}" is loaded`, 'model_not_found');
  g.o.log(`unloaded adapter "${name}"`);
  return { object: 'lora_adapter', id: name, deleted: true, message: `Success: LoRA adapter '${name}' removed successfully.` };
}
