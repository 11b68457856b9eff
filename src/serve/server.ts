/**
 * `lorakit serve`'s HTTP server over one generation session: OpenAI- and Ollama-compatible routes (openai.ts,
 * ollama.ts), an optional API key, JSON bodies up to a limit, and errors in each API's shape. The CLI starts it,
 * and the VS Code sidecar hosts the same function for "Serve Active Adapter". The session belongs to the caller:
 * closing the server cancels the generations it runs, not the session.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { UserError, type GenerationSession } from '../engine';
import { ApiError, errorBody, toApiError } from './errors';
import { Generations } from './generation';
import { ollamaRoutes } from './ollama';
import { openaiRoutes } from './openai';

export interface ServeOptions {
  /** default 127.0.0.1: this machine only */
  host?: string;
  /** default 8000; 0 takes any free port */
  port?: number;
  /** when set, every request but `GET /` needs `Authorization: Bearer <apiKey>` */
  apiKey?: string;
  /** the base model's id in /v1/models and in requests' `model` */
  modelId: string;
  /** one line per generation, adapter change and server-side failure */
  log?: (line: string) => void;
  /** generations running or waiting for their turn at once (default 64); one more is answered 429 */
  maxPending?: number;
  /** the largest request body in bytes (default 4 MiB); a larger one is answered 413 */
  bodyLimit?: number;
}

export interface Server {
  url: string;
  close(): Promise<void>;
}

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8000;
export const DEFAULT_BODY_LIMIT = 4 << 20;
export const DEFAULT_MAX_PENDING = 64;

/** Start serving a session; resolves once the server listens. */
export async function startServer(session: GenerationSession, o: ServeOptions): Promise<Server> {
  const log = o.log ?? (() => {});
  const host = o.host ?? DEFAULT_HOST;
  const port = o.port ?? DEFAULT_PORT;
  const sendError = (e: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const { error, internal } = toApiError(e);
    const path = request.url.split('?')[0];
    if (internal) log(`${request.method} ${path}: ${(e as Error)?.stack ?? e}`);
    else if (error.status !== 499) log(`${request.method} ${path}: ${error.status} ${error.message}`);
    if (error.status === 429) reply.header('retry-after', '1');
    return reply.code(error.status).type('application/json; charset=utf-8').send(errorBody(path, error));
  };
  const app = Fastify({ logger: false, bodyLimit: o.bodyLimit ?? DEFAULT_BODY_LIMIT, frameworkErrors: sendError });
  // every body is JSON, whatever its Content-Type says (curl -d sends form-urlencoded)
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJson(body as string));
    } catch (e) {
      done(e as Error, undefined);
    }
  });
  if (o.apiKey) {
    const want = digest(`Bearer ${o.apiKey}`);
    app.addHook('onRequest', async (request) => {
      if (request.url === '/' && request.method === 'GET') return;
      if (!timingSafeEqual(digest(request.headers.authorization ?? ''), want))
        throw new ApiError(
          401,
          'a valid API key is needed: send it as "Authorization: Bearer KEY"',
          'authentication_error',
          'invalid_api_key',
        );
    });
  }
  app.setErrorHandler(sendError);
  app.setNotFoundHandler((request, reply) =>
    sendError(
      new ApiError(404, `no route ${request.method} ${request.url.split('?')[0]}`, 'not_found_error', 'unknown_route'),
      request,
      reply,
    ),
  );
  // the health check that Ollama's clients make
  app.get('/', async (_request, reply) => reply.type('text/plain; charset=utf-8').send('lorakit is running'));

  const g = new Generations(session, { modelId: o.modelId, maxPending: o.maxPending ?? DEFAULT_MAX_PENDING, log });
  const created = Math.floor(Date.now() / 1000);
  openaiRoutes(app, g, created);
  ollamaRoutes(app, g, created);

  try {
    await app.listen({ host, port });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new UserError(`${host}:${port} is in use: choose another port (--port), or 0 for any free one`);
    if (code === 'EADDRNOTAVAIL' || code === 'EACCES' || code === 'ENOTFOUND')
      throw new UserError(`cannot listen on ${host}:${port}: ${(e as Error).message}`);
    throw e;
  }
  const addr = app.server.address() as AddressInfo;
  return {
    url: `http://${urlHost(host)}:${addr.port}`,
    async close() {
      g.stop();
      await app.close();
    },
  };
}

/** a body's JSON, or a 400 that says what is wrong with it */
function parseJson(body: string): unknown {
  if (body.trim() === '') throw new ApiError(400, 'the body is empty: expected a JSON object', 'invalid_request_error', 'invalid_json');
  try {
    return JSON.parse(body);
  } catch (e) {
    throw new ApiError(400, `the body is not valid JSON: ${(e as Error).message}`, 'invalid_request_error', 'invalid_json');
  }
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** the host to put in a URL that reaches the server from this machine */
function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}
