/**
 * Errors as the clients expect them: OpenAI's `{"error": {message, type, param, code}}` on /v1, Ollama's
 * `{"error": "message"}` on /api (its clients read `error` as a string). Whatever a handler throws becomes one of
 * these with a status: user input is a 4xx naming the field, never a 500.
 */
import { ConfigError, UserError } from '../engine';

export type ErrorType = 'invalid_request_error' | 'authentication_error' | 'not_found_error' | 'rate_limit_error' | 'server_error';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ErrorType = 'invalid_request_error',
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** the request fields behind the engine's setting names (ConfigError.flag) */
const PARAM_OF_FLAG: Record<string, string> = { 'max-new-tokens': 'max_tokens', temperature: 'temperature', 'top-p': 'top_p' };

/** fastify's own errors (body parsing and limits) by code: the status and a message that says what to change */
const FASTIFY_ERRORS: Record<string, [number, string, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'request_too_large', 'the request body is larger than the server accepts'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type', 'the body must be JSON'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'invalid_body', 'the body is not as long as its Content-Length'],
  FST_ERR_BAD_URL: [400, 'invalid_url', 'the URL is not valid'],
};

/** Whatever was thrown, as an API error; `internal` is set for what is a bug, not the client's doing. */
export function toApiError(e: unknown): { error: ApiError; internal: boolean } {
  if (e instanceof ApiError) return { error: e, internal: false };
  if (e instanceof ConfigError) {
    const param = PARAM_OF_FLAG[e.flag] ?? null;
    return { error: new ApiError(400, e.message, 'invalid_request_error', 'invalid_value', param), internal: false };
  }
  if (e instanceof UserError) return { error: new ApiError(400, e.message), internal: false };
  const code = (e as { code?: unknown })?.code;
  const known = typeof code === 'string' ? FASTIFY_ERRORS[code] : undefined;
  if (known) return { error: new ApiError(known[0], known[2], 'invalid_request_error', known[1]), internal: false };
  const status = (e as { statusCode?: unknown })?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500)
    return { error: new ApiError(status, (e as Error).message || 'bad request'), internal: false };
  return { error: new ApiError(500, `internal error: ${(e as Error)?.message ?? e}`, 'server_error', 'internal_error'), internal: true };
}

/** the body of an error answer, in the shape of the API the path belongs to */
export function errorBody(path: string, e: ApiError): unknown {
  if (isOllamaPath(path)) return { error: e.message };
  return { error: { message: e.message, type: e.type, param: e.param, code: e.code } };
}

export const isOllamaPath = (path: string) => path === '/api' || path.startsWith('/api/');

export const notFound = (what: string, code = 'not_found') => new ApiError(404, what, 'not_found_error', code);
