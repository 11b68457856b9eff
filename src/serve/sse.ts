/**
 * Streamed answers: Server-Sent Events for OpenAI (`data: {json}\n\n` … `data: [DONE]\n\n`) and NDJSON for Ollama
 * (one JSON object a line). The status line goes out with the first event, so an error found before any text (a
 * bad setting, an unknown adapter, a full queue) is still an ordinary JSON error with its status; one after it is
 * the stream's last event.
 */
import type { FastifyReply } from 'fastify';
import { errorBody, toApiError } from './errors';

export type StreamKind = 'sse' | 'ndjson';

const CONTENT_TYPE: Record<StreamKind, string> = {
  sse: 'text/event-stream; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
};

export class EventStream {
  private started = false;

  constructor(
    private readonly reply: FastifyReply,
    private readonly kind: StreamKind,
  ) {}

  /** Send one event (the status line and headers first, the first time). */
  send(event: unknown): void {
    this.start();
    const res = this.reply.raw;
    if (res.destroyed) return; // the client went away: its generation is being cancelled
    res.write(this.kind === 'sse' ? `data: ${JSON.stringify(event)}\n\n` : JSON.stringify(event) + '\n');
  }

  /** End the stream (with `data: [DONE]` for SSE). */
  end(): void {
    this.start();
    if (this.kind === 'sse' && !this.reply.raw.destroyed) this.reply.raw.write('data: [DONE]\n\n');
    this.reply.raw.end();
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    this.reply.hijack();
    this.reply.raw.writeHead(200, { 'content-type': CONTENT_TYPE[this.kind], 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
  }

  /**
   * A failure while streaming: before the first event it is thrown on (an ordinary error answer); after it, the
   * error is the last event. `log` hears of what is a bug.
   */
  fail(e: unknown, path: string, log: (line: string) => void): void {
    if (!this.started) throw e;
    const { error, internal } = toApiError(e);
    if (internal) log(`${path}: ${(e as Error)?.stack ?? e}`);
    if (error.status !== 499) this.send(errorBody(path, error));
    this.reply.raw.end();
  }
}
