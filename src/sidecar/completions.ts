/**
 * The sidecar's generation session, for inline completions, Compare and Serve: one base model, opened on first use
 * and kept (a request for another base replaces it, once the old one's requests and server are done); adapters are
 * loaded into it by folder (the folder is their name), once, so switching the active adapter costs nothing and
 * never reloads the base. The few most recently used adapters stay loaded.
 */
import * as path from 'node:path';
import type { Params, Result } from '../protocol';
import { GenerationSession, UserError, createBackend, openModel, openModelFolder, resolveModel } from '../engine';

/** adapters kept loaded beside the base (the least recently used beyond this are unloaded) */
export const KEPT_ADAPTERS = 4;

export interface RequestContext {
  /** the request's id (streamed text is tagged with it) */
  id: number;
  /** aborted by a `cancel` notification with this id */
  signal: AbortSignal;
}

/** a session held open for a while (a request, a server): it is not freed before release() */
export interface Lease {
  /** the base model folder */
  dir: string;
  session: GenerationSession;
  release(): void;
}

interface Open {
  dir: string;
  session: GenerationSession;
  dispose(): void;
  /** requests and servers using it: a replaced session is freed when the last one ends */
  users: number;
  replaced: boolean;
  /** adapter folders loaded, least recently used first */
  adapters: string[];
}

export class Completions {
  private open: Open | null = null;
  /** how many times a base model was opened (a swap of adapters opens none) */
  private opens = 0;

  constructor(
    private log: (line: string) => void,
    private delta: (id: number, text: string) => void,
  ) {}

  /** the session of this base model, held until release() (opening it, or replacing another, as needed) */
  lease(model: string): Lease {
    const o = this.session(model);
    return { dir: o.dir, session: o.session, release: this.hold(o) };
  }

  /** one more user of `o`; the function that ends it (once) */
  private hold(o: Open): () => void {
    o.users++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      if (--o.users === 0 && o.replaced) o.dispose();
    };
  }

  async complete(p: Params<'complete'>, ctx: RequestContext): Promise<Result<'complete'>> {
    const o = this.session(p.model);
    const release = this.hold(o);
    try {
      const adapter = p.adapter ? this.adapter(o, p.adapter) : null;
      const c = await o.session.complete({
        prompt: p.prompt,
        suffix: p.suffix,
        adapter,
        maxTokens: p.maxTokens,
        temperature: p.temperature ?? 0,
        seed: p.seed,
        stop: p.stop,
        heal: p.heal,
        signal: ctx.signal,
        onText: p.stream ? (t) => this.delta(ctx.id, t) : undefined,
      });
      return {
        text: c.text,
        finishReason: c.finishReason,
        promptTokens: c.promptTokens,
        completionTokens: c.completionTokens,
        cachedTokens: c.cachedTokens,
        fim: c.fim,
        firstTokenMs: c.firstTokenMs,
        tokensPerS: c.tokensPerS,
      };
    } finally {
      release();
    }
  }

  info(): Result<'session/info'> {
    const o = this.open;
    return { model: o?.dir ?? null, opens: this.opens, fim: !!o?.session.fim, adapters: o ? [...o.adapters] : [] };
  }

  /** the session of this base model: the open one, or a new one that replaces it */
  private session(model: string): Open {
    const dir = path.resolve(resolveModel(model));
    if (this.open?.dir === dir) return this.open;
    const folder = openModelFolder(dir);
    if (!folder.hasTokenizer) throw new UserError("no tokenizer.json: completions need the model's tokenizer", dir);
    const t0 = performance.now();
    const { be, reason } = createBackend('auto');
    const m = openModel(folder, be);
    const session = new GenerationSession(m.model, m.tokenizer, { modelDir: dir });
    this.close();
    this.opens++;
    const o: Open = {
      dir,
      session,
      users: 0,
      replaced: false,
      adapters: [],
      dispose: () => {
        session.close();
        be.dispose();
      },
    };
    this.open = o;
    this.log(
      `completions: opened ${dir} in ${Math.round(performance.now() - t0)} ms (${reason}; ${session.fim ? 'fill-in-the-middle' : 'prefix only'})`,
    );
    return o;
  }

  /** the session's name for an adapter folder, loading it the first time (or again, if a client of Serve unloaded it) */
  private adapter(o: Open, dir: string): string {
    const name = path.resolve(dir);
    const i = o.adapters.indexOf(name);
    if (i >= 0) o.adapters.splice(i, 1);
    if (!o.session.info(name)) {
      const t0 = performance.now();
      o.session.loadAdapter(name, name);
      this.log(`completions: loaded the adapter ${name} in ${Math.round(performance.now() - t0)} ms`);
      while (o.adapters.length >= KEPT_ADAPTERS) o.session.unloadAdapter(o.adapters.shift()!);
    }
    o.adapters.push(name);
    return name;
  }

  /** free the session (now, or when its running requests end) */
  close(): void {
    const o = this.open;
    this.open = null;
    if (!o) return;
    o.replaced = true;
    if (o.users === 0) o.dispose();
  }
}
