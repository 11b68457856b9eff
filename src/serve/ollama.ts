/**
 * Ollama's API, for the editors and tools that speak it: /api/tags, /api/show, /api/version, /api/generate (a
 * plain prompt, fill-in-the-middle with `suffix`, or `system` + prompt through the chat template) and /api/chat.
 * Streaming is the default, as NDJSON; the last line has done: true, the counts and the durations in nanoseconds.
 * Sampling defaults are Ollama's (temperature 0.8, top_p 0.9); num_predict -1 (the default) runs to the context's end.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { VERSION, type Completion, type CompletionRequest } from '../engine';
import { ApiError } from './errors';
import type { Generations } from './generation';
import { GenerateBody, OllamaChatBody, ShowBody, parseBody } from './schemas';
import { EventStream } from './sse';

export function ollamaRoutes(app: FastifyInstance, g: Generations, created: number): void {
  const modifiedAt = new Date(created * 1000).toISOString();
  app.get('/api/version', async () => ({ version: VERSION }));
  app.get('/api/tags', async () => ({
    models: names(g).map((name) => ({ name, model: name, modified_at: modifiedAt, ...about(g, name) })),
  }));
  app.post('/api/show', async (request) => {
    const b = parseBody(ShowBody, request.body);
    const name = b.model ?? b.name; // older clients send `name`
    if (!name) throw new ApiError(400, 'model is required', undefined, 'invalid_value', 'model');
    const { id } = served(g, name);
    const spec = g.session.model.spec;
    return {
      ...about(g, id),
      modified_at: modifiedAt,
      model_info: { 'general.architecture': spec.modelType, [`${spec.modelType}.context_length`]: spec.maxPositions },
      capabilities: ['completion', ...(g.session.fim ? ['insert'] : [])],
    };
  });
  app.post('/api/generate', async (request, reply) => {
    const b = parseBody(GenerateBody, request.body);
    const { adapter } = served(g, b.model);
    if (!b.prompt && !b.suffix) return loaded(b.model, { response: '' });
    if (b.system && b.suffix && !b.raw)
      throw new ApiError(
        400,
        'system and suffix cannot go together: fill-in-the-middle takes plain text',
        undefined,
        'invalid_value',
        'system',
      );
    const req: CompletionRequest = {
      ...sampling(b.options),
      adapter,
      ...(b.system && !b.raw
        ? {
            messages: [
              { role: 'system', content: b.system },
              { role: 'user', content: b.prompt ?? '' },
            ],
          }
        : { prompt: b.prompt ?? '', suffix: b.suffix ?? undefined }),
    };
    return answer(g, reply, req, b, (text) => ({ response: text }), 'ollama generate');
  });
  app.post('/api/chat', async (request, reply) => {
    const b = parseBody(OllamaChatBody, request.body);
    const { adapter } = served(g, b.model);
    const message = (content: string) => ({ message: { role: 'assistant', content } });
    if (!b.messages?.length) return loaded(b.model, message(''));
    const req: CompletionRequest = {
      ...sampling(b.options),
      adapter,
      messages: b.messages.map((m) => ({ role: m.role, content: m.content })),
    };
    return answer(g, reply, req, b, message, 'ollama chat');
  });
}

/** the models by Ollama name: the base model and each adapter */
const names = (g: Generations) => [g.o.modelId, ...g.session.adapterNames()];

function about(g: Generations, name: string) {
  const spec = g.session.model.spec;
  const parent = name === g.o.modelId ? '' : g.o.modelId;
  return {
    size: 0,
    digest: '',
    details: {
      parent_model: parent,
      format: 'safetensors',
      family: spec.modelType,
      families: [spec.modelType],
      parameter_size: '',
      quantization_level: '',
    },
  };
}

/** a model by its Ollama name, which clients may tag `:latest`: its id, and its adapter (null for the base); 404 for neither */
function served(g: Generations, model: string): { id: string; adapter: string | null } {
  const id = model.endsWith(':latest') && !names(g).includes(model) ? model.slice(0, -':latest'.length) : model;
  return { id, adapter: g.adapterOf(id) };
}

/** Ollama's answer to a request with nothing to generate: the model is loaded (it always is here) */
const loaded = (model: string, body: object) => ({ model, created_at: new Date().toISOString(), ...body, done: true, done_reason: 'load' });

type Options = GenerateBody['options'];

function sampling(o: Options): CompletionRequest {
  const greedy = o?.top_p === 0;
  const n = o?.num_predict;
  return {
    temperature: greedy ? 0 : (o?.temperature ?? 0.8),
    topP: greedy ? 1 : (o?.top_p ?? 0.9),
    seed: o?.seed ?? undefined,
    stop: (o?.stop ?? []).filter((s) => s.length > 0),
    maxTokens: n === undefined || n === null || n < 0 ? undefined : n,
  };
}

/** Run the generation and answer it as one object, or as NDJSON lines and a last line with the counts. */
async function answer(
  g: Generations,
  reply: FastifyReply,
  req: CompletionRequest,
  b: { model: string; stream?: boolean | null },
  piece: (text: string) => object,
  what: string,
) {
  const t0 = process.hrtime.bigint();
  req.maxTokens ??= g.roomAfterPrompt(req);
  const line = (body: object, done: boolean) => ({ model: b.model, created_at: new Date().toISOString(), ...body, done });
  const last = (c: Completion, text: string) => ({
    ...line(piece(text), true),
    done_reason: c.finishReason === 'length' ? 'length' : 'stop',
    total_duration: Number(process.hrtime.bigint() - t0),
    load_duration: 0,
    prompt_eval_count: c.promptTokens,
    prompt_eval_duration: Math.round(c.firstTokenMs * 1e6),
    eval_count: c.completionTokens,
    eval_duration: c.completionTokens ? Math.round((c.completionTokens / c.tokensPerS) * 1e9) : 0,
  });
  if (b.stream === false) {
    const c = await g.run(reply, req, what);
    return last(c, c.text);
  }
  const s = new EventStream(reply, 'ndjson');
  try {
    const c = await g.run(reply, { ...req, onText: (d) => s.send(line(piece(d), false)) }, what);
    s.send(last(c, ''));
    s.end();
  } catch (e) {
    s.fail(e, reply.request.url, g.o.log);
  }
  return reply;
}
