/**
 * The training sidecar: a Node process the extension forks. It answers validated requests over the IPC channel
 * and sends events; the engine runs here, so a crash or a long job never touches the editor.
 */
import { Method, Request, Requests, RpcError, issues } from '../protocol';
import { UserError } from '../engine/errors';
import { Sidecar } from './handlers';
import { WebGpuBackend } from '../engine/backend/webgpu/webgpu';

const send = (m: unknown) => process.send?.(m);
const sidecar = new Sidecar((event, params) => send({ event, params }));

process.on('message', async (raw: unknown) => {
  const req = Request.safeParse(raw);
  if (!req.success) {
    send({ event: 'log', params: { line: `sidecar: ignored a malformed request (${issues(req.error)})` } });
    return;
  }
  const { id, method } = req.data;
  const spec = Requests[method as Method];
  const fail = (error: RpcError) => send({ id, error });
  if (!spec) return fail({ code: 'bad_request', message: `unknown method "${method}"` });
  const params = spec.params.safeParse(req.data.params ?? {});
  if (!params.success) return fail({ code: 'bad_request', message: `${method}: ${issues(params.error)}` });
  try {
    const result = await sidecar.handle(method as Method, params.data as never);
    send({ id, result });
  } catch (e) {
    if (e instanceof UserError) fail({ code: 'user_error', message: e.message });
    else fail({ code: 'internal', message: (e as Error).message, detail: (e as Error).stack });
  }
});

// the extension went away: nothing is left to report to
process.on('disconnect', () => {
  WebGpuBackend.disposeAll();
  process.exit(0);
});
send({ event: 'log', params: { line: `sidecar ${process.pid} ready (node ${process.version})` } });
