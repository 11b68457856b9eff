/**
 * The extension's end of the sidecar: forks it, sends requests, matches responses, validates everything that
 * comes back, and reports the process's death. A request may carry an AbortSignal (aborting it sends the sidecar
 * a `cancel` notification; the request still gets its answer) and a handler for its streamed text. No `vscode`
 * here, so it is tested as plain Node.
 */
import { ChildProcess, fork } from 'node:child_process';
import { EventMessage, Method, Params, Requests, Result, RpcError, issues, parseFromSidecar } from '../protocol';

export class SidecarError extends Error {
  constructor(
    readonly code: RpcError['code'] | 'exited',
    message: string,
    readonly detail?: string,
  ) {
    super(message);
  }
}

export interface ClientHooks {
  onEvent(e: EventMessage): void;
  /** the process ended; `expected` when stop() asked for it */
  onExit(info: { code: number | null; signal: string | null; expected: boolean }): void;
  log(line: string): void;
}

export interface RequestOptions {
  /** aborting it asks the sidecar to end the request early (it answers with what it has) */
  signal?: AbortSignal;
  /** the request's streamed text (complete/delta events with its id) */
  onDelta?: (text: string) => void;
}

interface Pending {
  resolve: (v: any) => void;
  reject: (e: Error) => void;
  method: string;
  onDelta?: (text: string) => void;
}

export class SidecarClient {
  private child: ChildProcess | null = null;
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private stopping = false;

  constructor(
    private script: string,
    private hooks: ClientHooks,
  ) {}

  get alive(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }
  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    if (this.alive) return;
    this.stopping = false;
    const child = fork(this.script, [], { serialization: 'advanced', stdio: ['ignore', 'pipe', 'pipe', 'ipc'], execArgv: [] });
    this.child = child;
    const lines = (prefix: string) => (b: Buffer) =>
      b
        .toString()
        .split('\n')
        .filter(Boolean)
        .forEach((l) => this.hooks.log(prefix + l));
    child.stdout?.on('data', lines(''));
    child.stderr?.on('data', lines('[stderr] '));
    child.on('message', (m) => this.receive(m));
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = null;
      for (const [, p] of this.pending) p.reject(new SidecarError('exited', `the lorakit sidecar stopped during ${p.method}`));
      this.pending.clear();
      this.hooks.onExit({ code, signal, expected: this.stopping });
    });
  }

  private receive(m: unknown): void {
    const r = parseFromSidecar(m);
    if (r.kind === 'invalid') return this.hooks.log(`rejected a malformed message from the sidecar: ${r.why}`);
    if (r.kind === 'event') {
      if (r.msg.event === 'complete/delta') return this.pending.get(r.msg.params.id)?.onDelta?.(r.msg.params.text);
      return this.hooks.onEvent(r.msg);
    }
    const p = this.pending.get(r.msg.id);
    if (!p) return this.hooks.log(`a response to unknown request ${r.msg.id}`);
    this.pending.delete(r.msg.id);
    if ('error' in r.msg) return p.reject(new SidecarError(r.msg.error.code, r.msg.error.message, r.msg.error.detail));
    const ok = Requests[p.method as Method].result.safeParse(r.msg.result);
    if (ok.success) p.resolve(ok.data);
    else {
      this.hooks.log(`rejected a malformed ${p.method} result from the sidecar: ${issues(ok.error)}`);
      p.reject(new SidecarError('internal', `the sidecar answered ${p.method} with a malformed result`));
    }
  }

  request<M extends Method>(method: M, params: Params<M>, o: RequestOptions = {}): Promise<Result<M>> {
    this.start();
    const id = this.nextId++;
    const child = this.child!;
    const cancel = () => {
      if (this.pending.has(id) && this.child === child) child.send({ method: 'cancel', params: { id } });
    };
    return new Promise<Result<M>>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method, onDelta: o.onDelta });
      child.send({ id, method, params });
      if (o.signal?.aborted) cancel();
      else o.signal?.addEventListener('abort', cancel, { once: true });
    }).finally(() => o.signal?.removeEventListener('abort', cancel));
  }

  /** End the process (a running job writes its checkpoint only if it was stopped first). */
  stop(): void {
    this.stopping = true;
    this.child?.kill();
  }
}
