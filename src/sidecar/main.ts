/**
 * The training sidecar: a Node process the extension forks. It answers validated requests over the IPC channel
 * and sends events; the engine runs here, so a crash or a long job never touches the editor. No request can take
 * the process down: a bad one is answered with an error, and an unexpected failure is logged, not fatal.
 */
import { Method, Notification, Request, Requests, RpcError, issues } from '../protocol';
import { UserError, releaseDevices } from '../engine';
import { Sidecar } from './handlers';

const send = (m: unknown): void => void process.send?.(m);
const log = (line: string) => send({ event: 'log', params: { line } });
const sidecar = new Sidecar((event, params) => send({ event, params }));
/** the requests being answered, by id: what a `cancel` notification aborts */
const running = new Map<number, AbortController>();

/** answer one request: a result, or an error the extension can show; or act on a notification */
async function answer(raw: unknown): Promise<void> {
  if (raw && typeof raw === 'object' && !('id' in raw)) {
    const n = Notification.safeParse(raw);
    if (!n.success) return log(`sidecar: ignored a malformed notification (${issues(n.error)})`);
    return void running.get(n.data.params.id)?.abort();
  }
  const req = Request.safeParse(raw);
  if (!req.success) return log(`sidecar: ignored a malformed request (${issues(req.error)})`);
  const { id, method } = req.data;
  const fail = (error: RpcError) => send({ id, error });
  const handler = sidecar.handlerOf(method);
  if (!handler) return fail({ code: 'bad_request', message: `unknown method "${method}"` });
  const params = Requests[method as Method].params.safeParse(req.data.params ?? {});
  if (!params.success) return fail({ code: 'bad_request', message: `${method}: ${issues(params.error)}` });
  const ac = new AbortController();
  running.set(id, ac);
  try {
    send({ id, result: await handler(params.data as never, { id, signal: ac.signal }) });
  } catch (e) {
    if (e instanceof UserError) fail({ code: 'user_error', message: e.message });
    else fail({ code: 'internal', message: (e as Error).message, detail: (e as Error).stack });
  } finally {
    if (running.get(id) === ac) running.delete(id);
  }
}

process.on('message', (raw: unknown) => {
  answer(raw).catch((e: Error) => log(`sidecar: a request failed: ${e.stack ?? e}`));
});
// a failure no request is waiting for (a bug) must not end a training run that is going well
process.on('unhandledRejection', (e) => log(`sidecar: unhandled rejection: ${(e as Error)?.stack ?? e}`));

// the extension went away: nothing is left to report to
process.on('disconnect', () => {
  setTimeout(() => process.exit(0), 2000).unref(); // a server that does not close in time keeps nothing waiting
  void sidecar.serving.stop().finally(() => {
    sidecar.completions.close();
    releaseDevices();
    process.exit(0);
  });
});
log(`sidecar ${process.pid} ready (node ${process.version})`);
