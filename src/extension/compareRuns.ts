/**
 * Compare's runs, apart from VS Code: one prompt completed by the base model and by the adapter at once, both
 * streamed to the panel side by side, with one seed for both (a sampled run differs only by the adapter). A new
 * run replaces the one going; Stop cancels it (each side then says it was cancelled). The last run's settings and
 * text are kept for a panel that is shown again. comparePanel.ts hosts it in a webview.
 */
import { CompareSide, FromCompare, Params, Result, ToCompare, issues } from '../protocol';
import type { RequestOptions } from './client';

export type CompleteRequest = (p: Params<'complete'>, o: RequestOptions) => Promise<Result<'complete'>>;
export interface CompareTarget {
  model: string;
  /** the adapter folder */
  adapter: string;
  /** what the user calls it */
  name: string;
}

const SIDES: CompareSide[] = ['base', 'adapter'];

export class CompareRuns {
  private settings = { prompt: 'def ', temperature: 0, maxTokens: 64 };
  private text: Record<CompareSide, string> = { base: '', adapter: '' };
  /** the run whose messages go to the panel; a newer run (or a new target) makes older ones quiet */
  private runId = 0;
  private ac: AbortController | null = null;

  constructor(
    private target: CompareTarget,
    private request: CompleteRequest,
    private post: (m: ToCompare) => void,
    private log: (line: string) => void,
  ) {}

  get running(): boolean {
    return this.ac !== null;
  }

  /** compare another adapter (or base model): the run going stops, and the panel starts afresh */
  retarget(t: CompareTarget): void {
    this.stop();
    this.ac = null;
    this.runId++;
    this.target = t;
    this.text = { base: '', adapter: '' };
    this.post(this.init());
  }

  private init(): ToCompare {
    return {
      type: 'init',
      adapter: this.target.name,
      model: this.target.model,
      ...this.settings,
      text: { ...this.text },
      running: this.running,
    };
  }

  /** a message from the webview: validated, then acted on; a malformed one is refused and logged */
  async receive(raw: unknown): Promise<void> {
    const p = FromCompare.safeParse(raw);
    if (!p.success) {
      this.log(`rejected a malformed message from the Compare panel: ${issues(p.error)}`);
      return this.post({ type: 'error', message: `rejected: ${issues(p.error)}` });
    }
    const m = p.data;
    if (m.type === 'ready') return this.post(this.init());
    if (m.type === 'stop') return this.stop();
    await this.run(m.prompt, m.temperature, m.maxTokens);
  }

  /** both sides at once; resolves when both have answered */
  async run(prompt: string, temperature: number, maxTokens: number): Promise<void> {
    this.stop();
    const id = ++this.runId;
    const ac = (this.ac = new AbortController());
    this.settings = { prompt, temperature, maxTokens };
    this.text = { base: '', adapter: '' };
    this.post({ type: 'start', prompt, temperature });
    const seed = Math.floor(Math.random() * 2 ** 31);
    const mine = () => this.runId === id;
    const side = async (s: CompareSide) => {
      const p: Params<'complete'> = { model: this.target.model, prompt, maxTokens, temperature, seed, stream: true };
      if (s === 'adapter') p.adapter = this.target.adapter;
      const onDelta = (text: string) => {
        if (!mine()) return;
        this.text[s] += text;
        this.post({ type: 'delta', side: s, text });
      };
      try {
        const r = await this.request(p, { signal: ac.signal, onDelta });
        if (mine())
          this.post({ type: 'done', side: s, finishReason: r.finishReason, tokens: r.completionTokens, tokensPerS: r.tokensPerS });
      } catch (e) {
        if (mine()) this.post({ type: 'error', side: s, message: (e as Error).message });
      }
    };
    await Promise.all(SIDES.map(side));
    if (this.ac === ac) this.ac = null;
    if (mine()) this.post({ type: 'idle' });
  }

  /** cancel the run going (its sides still answer, as cancelled) */
  stop(): void {
    this.ac?.abort();
  }
}
