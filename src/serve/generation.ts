/**
 * What the OpenAI and Ollama routes share: the model a request names (the base, or an adapter by its name), the
 * bound on generations at once, and the cancel wiring — a client that goes away aborts its generation, and
 * stopping the server aborts them all.
 */
import type { FastifyReply } from 'fastify';
import { UserError, type Completion, type CompletionRequest, type GenerationSession } from '../engine';
import { ApiError, notFound } from './errors';

export interface GenerationOptions {
  modelId: string;
  /** generations running or waiting for their turn at once; one more is answered 429 */
  maxPending: number;
  log: (line: string) => void;
}

export class Generations {
  private readonly running = new Set<AbortController>();
  private stopping = false;

  constructor(
    readonly session: GenerationSession,
    readonly o: GenerationOptions,
  ) {}

  /** the model's context in tokens (max_position_embeddings) */
  get context(): number {
    return this.session.model.spec.maxPositions;
  }

  /** The adapter a request's `model` names: null for the base model; 404 for a name that is neither. */
  adapterOf(model: string): string | null {
    if (model === this.o.modelId) return null;
    if (this.session.info(model)) return model;
    throw notFound(`the model "${model}" does not exist: GET /v1/models lists the base model and the adapters loaded`, 'model_not_found');
  }

  /**
   * max tokens when a request sets none and means "until the context is full" (a chat without max_tokens,
   * Ollama's num_predict -1): the room the prompt leaves. A prompt that fills the context alone is refused (413).
   */
  roomAfterPrompt(req: CompletionRequest): number {
    const tok = this.session.tokenizer;
    const n = req.messages
      ? tok.encode(tok.applyChat(req.messages, true), false).length
      : tok.encode(req.prompt ?? '').length + (req.suffix ? tok.encode(req.suffix, false).length + 3 : 0);
    if (n >= this.context)
      throw new ApiError(
        413,
        `the prompt is ${n} tokens, more than the model's context of ${this.context}: shorten it, or set max_tokens (the prompt's start is then left out)`,
        'invalid_request_error',
        'context_length_exceeded',
        req.messages ? 'messages' : 'prompt',
      );
    return this.context - n;
  }

  /** Run one request's generation; it ends early, with what it has, when the client goes away. */
  async run(reply: FastifyReply, req: CompletionRequest, what: string): Promise<Completion> {
    if (this.stopping) throw stoppingError();
    if (this.running.size >= this.o.maxPending)
      throw new ApiError(
        429,
        `${this.running.size} requests are being answered, the most this server takes at once: try again shortly`,
        'rate_limit_error',
        'rate_limit_exceeded',
      );
    const ac = new AbortController();
    const res = reply.raw;
    // the response closes before it has ended only when the client went away (or the server is stopping)
    const gone = () => {
      if (!res.writableEnded) ac.abort();
    };
    res.on('close', gone);
    if (res.destroyed) ac.abort();
    this.running.add(ac);
    const t0 = performance.now();
    try {
      const c = await this.session.complete({ ...req, signal: ac.signal });
      const ms = Math.round(performance.now() - t0);
      this.o.log(
        `${what} ${req.adapter ?? this.o.modelId}: ${c.promptTokens} prompt tokens (${c.cachedTokens} cached${c.promptCut ? ', cut to fit' : ''}) + ${c.completionTokens} → ${c.finishReason} in ${ms} ms`,
      );
      if (c.finishReason === 'cancelled') throw this.stopping ? stoppingError() : new ApiError(499, 'the client closed the request');
      return c;
    } catch (e) {
      // an adapter unloaded between the request's check and its turn is a 404, as if it had been gone before
      if (e instanceof UserError && req.adapter) this.adapterOf(req.adapter);
      throw e;
    } finally {
      res.off('close', gone);
      this.running.delete(ac);
    }
  }

  /** Refuse new generations and cancel those running (they answer 503, or end their stream with an error). */
  stop(): void {
    this.stopping = true;
    for (const ac of this.running) ac.abort();
  }
}

const stoppingError = () => new ApiError(503, 'the server is stopping', 'server_error', 'server_stopping');
