/**
 * "Serve Active Adapter": the HTTP server of src/serve over the sidecar's own generation session (the one inline
 * completions use, so the base is not loaded twice), with the adapter loaded under a URL-safe name. One server at
 * a time; it holds the session open until it stops, even if completions move to another base meanwhile.
 */
import * as path from 'node:path';
import type { Params, Result } from '../protocol';
import { startServer, type Server } from '../serve/server';
import type { Completions } from './completions';

/** a name clients can send as `model`: lower case letters, digits, `.`, `_` and `-` */
export function servedName(name: string): string {
  const s = name
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '');
  return s || 'adapter';
}

export class Serving {
  private current: { server: Server; stop: () => void } | null = null;

  constructor(
    private completions: Completions,
    private log: (line: string) => void,
  ) {}

  async start(p: Params<'serve/start'>): Promise<Result<'serve/start'>> {
    await this.stop();
    const lease = this.completions.lease(p.model);
    const modelId = servedName(path.basename(lease.dir));
    let adapter: string | null = null;
    try {
      if (p.adapter) {
        adapter = servedName(p.name ?? path.basename(path.dirname(path.resolve(p.adapter))));
        if (adapter === modelId) adapter += '-lora';
        lease.session.loadAdapter(adapter, path.resolve(p.adapter));
      }
      const server = await startServer(lease.session, {
        host: p.host,
        port: p.port,
        apiKey: p.apiKey,
        modelId,
        log: (line) => this.log(`serve: ${line}`),
      });
      const name = adapter;
      this.current = {
        server,
        stop: () => {
          if (name) lease.session.unloadAdapter(name);
          lease.release();
        },
      };
      this.log(`serve: ${server.url} serves ${lease.dir} as "${modelId}"${adapter ? ` and ${p.adapter} as "${adapter}"` : ''}`);
      return { url: server.url, modelId, adapter };
    } catch (e) {
      if (adapter) lease.session.unloadAdapter(adapter);
      lease.release();
      throw e;
    }
  }

  /** stop the server (its generations are cancelled); false when none was running */
  async stop(): Promise<boolean> {
    const c = this.current;
    if (!c) return false;
    this.current = null;
    try {
      await c.server.close();
    } finally {
      c.stop();
    }
    this.log('serve: stopped');
    return true;
  }
}
