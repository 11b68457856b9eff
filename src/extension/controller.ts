/**
 * What the extension does, apart from VS Code's API: starts, stops, pauses and resumes runs through the sidecar,
 * keeps the run's history for the panel to replay, turns events into status-bar text, validates everything the
 * panel sends, and handles the sidecar's death. `extension.ts` gives it a `Ui`; tests give it a fake one.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EvalEvent, EventMessage, FromPanel, HubProgress, RunStatus, StepEvent, ToPanel, TrainSettings, parseFromPanel } from '../protocol';
import { formatBytes, formatDuration } from '../protocol/format';
import { SidecarClient } from './client';
import { writeJsonAtomic } from './jsonFile';
import { inside, listAdapters, listMerged, newRunDir, resumableRun, runSettings } from './project';

export type AdapterAction = 'merge' | 'activate' | 'compare' | 'reveal' | 'export';
/** what each action does, for the message that refuses it in an untrusted workspace; reveal needs no trust */
const NEEDS_TRUST: Partial<Record<AdapterAction | 'generate' | 'train' | 'export', string>> = {
  train: 'Training reads and writes files and runs the engine',
  merge: 'Merging reads the model and writes a new one',
  export: 'Exporting reads the model, the adapter or the data and writes files',
  activate: 'Activating an adapter writes .lorakit/active.json and makes it the project’s model',
  compare: 'Comparing runs the model and the adapter on your prompt',
  generate: 'Generating runs the model',
};

export interface Ui {
  /** to the panel, when it is open (history is replayed on `ready`) */
  post(msg: ToPanel): void;
  status(text: string, tooltip: string): void;
  info(msg: string, ...actions: string[]): Promise<string | undefined>;
  error(msg: string, ...actions: string[]): Promise<string | undefined>;
  log(line: string): void;
  /** settings under lorakit.* (defaults for the panel's fields); read again when they change */
  defaults(): Partial<TrainSettings>;
  trusted(): boolean;
  pick(field: 'model' | 'data'): Promise<string | undefined>;
  /** merge / activate / compare / reveal an adapter (only called once the workspace trust allows it) */
  adapterAction(action: AdapterAction, dir: string): Promise<void>;
  adaptersChanged(): void;
}

export const DEFAULT_SETTINGS: Omit<TrainSettings, 'model' | 'data'> = {
  rank: 8,
  alpha: 16,
  dropout: 0.05,
  targets: 'all-linear',
  quant: 'none',
  doubleQuant: false,
  blocksize: 64,
  seqLen: 512,
  batch: 4,
  gradAccum: 1,
  lr: 2e-4,
  epochs: 1,
  backend: 'auto',
};

const MAX_HISTORY = 5000;

export function statusText(s: RunStatus, last?: StepEvent): { text: string; tooltip: string } {
  if ((s.state === 'running' || s.state === 'pausing' || s.state === 'stopping') && last) {
    const eta = ((last.total_steps - last.step) * last.step_ms) / 1000;
    return {
      text: `$(sync~spin) LoRA step ${last.step}/${last.total_steps} · loss ${last.loss.toFixed(3)} · ${last.tokens_per_s.toFixed(0)} tok/s · ETA ${formatDuration(eta)}`,
      tooltip: `lorakit: training in ${s.runDir}\npeak memory ${formatBytes(last.mem.total)}\nclick to open the training panel`,
    };
  }
  const word: Record<RunStatus['state'], string> = {
    idle: 'idle',
    preparing: 'preparing…',
    running: 'starting…',
    pausing: 'pausing…',
    paused: 'paused',
    stopping: 'stopping…',
    stopped: 'stopped',
    done: 'done',
    failed: 'failed',
  };
  const icon = s.state === 'preparing' ? '$(sync~spin)' : s.state === 'failed' ? '$(error)' : '$(beaker)';
  return { text: `${icon} LoRA ${word[s.state]}`, tooltip: `lorakit: ${s.message ?? word[s.state]}\nclick to open the training panel` };
}

export class Controller {
  status: RunStatus = { state: 'idle' };
  steps: StepEvent[] = [];
  evals: EvalEvent[] = [];
  /** the one set of run settings: the panel's form (sent with each estimate), the lorakit.* settings, the last run's */
  settings: Partial<TrainSettings> = {};
  /** set while a run is meant to be going: what Restart and Resume continue */
  private current: { settings: TrainSettings; runDir: string } | null = null;
  /** the lorakit.* settings as last read, to tell which of them changed */
  private config: Partial<TrainSettings>;

  constructor(
    readonly root: string | null,
    readonly client: SidecarClient,
    private ui: Ui,
  ) {
    this.config = ui.defaults();
    this.settings = { ...DEFAULT_SETTINGS, ...(root ? { data: root } : {}), ...this.config };
    if (root) this.restoreLastRun(root);
    this.showStatus();
  }

  /**
   * The lorakit.* settings changed (e.g. Choose Base Model saved lorakit.baseModel): the fields that changed replace
   * the run settings and the open panel's form; the others keep what the panel set. Returns the changed fields.
   */
  configChanged(): Partial<TrainSettings> {
    const now = this.ui.defaults();
    const keys = new Set([...Object.keys(now), ...Object.keys(this.config)] as (keyof TrainSettings)[]);
    const changed: Partial<TrainSettings> = {};
    for (const k of keys) if (now[k] !== this.config[k] && now[k] !== undefined) (changed as Record<string, unknown>)[k] = now[k];
    if (this.config.steps !== undefined && now.steps === undefined) changed.epochs = 1; // steps back to 0: one epoch
    this.config = now;
    if (!Object.keys(changed).length) return changed;
    this.settings = { ...this.settings, ...changed };
    if (changed.epochs && !changed.steps) delete this.settings.steps;
    if (changed.steps) delete this.settings.epochs;
    this.ui.post({ type: 'settings', settings: changed });
    return changed;
  }

  /** the settings a run on `data` starts with: the panel's (rank, quantization, …) with this model and data */
  runSettingsFor(model: string, data: string): TrainSettings {
    return { ...DEFAULT_SETTINGS, ...this.settings, model, data } as TrainSettings;
  }

  /**
   * How long `s` should take, from the last run's measured speed (its median tokens/s), or null when there is no
   * measured run or the step count is not known before the data is tokenized (one epoch).
   */
  expectedDuration(s: TrainSettings): { seconds: number; tokensPerS: number } | null {
    if (!s.steps || !this.steps.length) return null;
    const tps = this.steps
      .map((x) => x.tokens_per_s)
      .filter((x) => x > 0 && Number.isFinite(x))
      .sort((a, b) => a - b);
    if (!tps.length) return null;
    const median = tps[tps.length >> 1];
    return { seconds: (s.steps * s.seqLen * s.batch * s.gradAccum) / median, tokensPerS: median };
  }

  /** null when the workspace trust allows `action`, else the one line that refuses it (also shown) */
  untrusted(action: AdapterAction | 'generate' | 'train' | 'export'): string | null {
    const what = NEEDS_TRUST[action];
    if (!what || this.ui.trusted()) return null;
    const why = `${what}: it needs a trusted workspace. Trust this folder (Manage Workspace Trust) to use it.`;
    void this.ui.error(`lorakit: ${why}`);
    return why;
  }

  /** an adapter action from a command or the panel, refused in an untrusted workspace */
  async adapterAction(action: AdapterAction, dir?: string): Promise<void> {
    if (this.untrusted(action)) return;
    await this.ui.adapterAction(action, dir as string);
  }

  get busy(): boolean {
    return ['preparing', 'running', 'pausing', 'stopping'].includes(this.status.state);
  }

  // ---- from the sidecar ----

  /** where a Hub download's progress goes (the notification that covers it), while one runs */
  hubProgress: ((p: HubProgress) => void) | null = null;

  onEvent(e: EventMessage): void {
    switch (e.event) {
      case 'hub/progress':
        return this.hubProgress?.(e.params);
      case 'log':
        return this.ui.log(e.params.line);
      case 'train/steps': {
        const batch = e.params.steps;
        if (!batch.length) return;
        this.steps.push(...batch);
        if (this.steps.length > MAX_HISTORY) this.steps.splice(0, this.steps.length - MAX_HISTORY);
        this.ui.post({ type: 'steps', steps: batch });
        return this.showStatus();
      }
      case 'train/eval':
        this.evals.push(e.params);
        return this.ui.post({ type: 'eval', eval: e.params });
      case 'train/state':
        this.status = e.params.state === 'paused' ? { ...e.params, message: this.pausedMessage(e.params) } : e.params;
        this.ui.post({ type: 'status', status: this.status });
        this.showStatus();
        if (e.params.state === 'done') {
          this.current = null;
          this.adaptersChanged();
          void this.ui.info(`lorakit: training finished; adapter in ${e.params.adapterDir}`);
        } else if (e.params.state === 'failed') {
          this.current = null;
          void this.ui.error(`lorakit: training failed: ${e.params.message}`);
        } else if (e.params.state === 'stopped') this.current = null;
        return;
    }
  }

  /** "paused at step 56; Resume continues from its checkpoint" (the sidecar says "stopped at step …" for both) */
  private pausedMessage(s: RunStatus): string {
    const n = /step (\d+)/.exec(s.message ?? '')?.[1] ?? this.steps[this.steps.length - 1]?.step;
    return `paused${n !== undefined ? ` at step ${n}` : ''}; Resume continues from its checkpoint`;
  }

  /** the adapters or merged models changed: the tree and the panel list them again */
  adaptersChanged(): void {
    this.ui.adaptersChanged();
    this.ui.post({ type: 'adapters', adapters: this.adapters(), merged: this.merged() });
  }

  /** the sidecar died: say so, and offer to restart it and resume the run from its last checkpoint */
  async onExit(info: { code: number | null; signal: string | null; expected: boolean }): Promise<void> {
    if (info.expected) return;
    const run = this.current;
    this.ui.log(`the sidecar exited (code ${info.code}, signal ${info.signal})`);
    if (this.busy) {
      this.status = { state: 'failed', runDir: run?.runDir, message: 'the training process stopped unexpectedly' };
      this.ui.post({ type: 'status', status: this.status });
      this.showStatus();
    }
    const actions = run ? ['Restart and Resume', 'Restart'] : ['Restart'];
    const pick = await this.ui.error(
      `lorakit: the training process stopped unexpectedly${run ? ' during a run; its last checkpoint is kept' : ''}.`,
      ...actions,
    );
    if (pick === 'Restart') this.client.start();
    else if (pick === 'Restart and Resume' && run) await this.resume(run.runDir);
  }

  // ---- actions ----

  /** Check settings and start a run in `.lorakit/runs/`; returns the run folder, or null with the reason shown. */
  async start(settings: TrainSettings): Promise<string | null> {
    const why = this.refuse(settings);
    if (why) {
      this.ui.post({ type: 'error', message: why });
      void this.ui.error(`lorakit: ${why}`);
      return null;
    }
    const runDir = newRunDir(this.root!);
    writeJsonAtomic(path.join(runDir, 'settings.json'), settings);
    return this.launch(settings, runDir, false);
  }

  /** the reason a run cannot start with these settings, or null */
  refuse(s: TrainSettings): string | null {
    if (!this.root) return 'open a folder first: runs and adapters live in the project’s .lorakit/ folder';
    if (!this.ui.trusted()) return 'training runs only in a trusted workspace (it reads and writes files and runs the engine)';
    if (this.busy) return `a run is already going (${this.status.runDir}); stop it first`;
    if (!fs.existsSync(path.join(s.model, 'config.json'))) return `${s.model} is not a model folder (no config.json)`;
    if (!inside(this.root, s.data)) return `the data ${s.data} is outside the workspace`;
    try {
      fs.accessSync(s.data, fs.constants.R_OK);
    } catch {
      return `the data ${s.data} cannot be read`;
    }
    return null;
  }

  private async launch(settings: TrainSettings, runDir: string, resume: boolean): Promise<string | null> {
    this.steps = resume ? this.steps : [];
    this.evals = resume ? this.evals : [];
    // the panel's form is left as it is: a run from the right-click used its settings, and a resumed run keeps its own
    this.current = { settings, runDir };
    this.status = { state: 'preparing', runDir, ...(resume ? { message: 'resuming from the last checkpoint' } : {}) };
    this.ui.post({ type: 'status', status: this.status });
    this.showStatus();
    try {
      await this.client.request('train/start', { settings, out: runDir, resume });
      return runDir;
    } catch (e) {
      this.current = null;
      this.status = { state: 'failed', runDir, message: (e as Error).message };
      this.ui.post({ type: 'status', status: this.status });
      this.showStatus();
      void this.ui.error(`lorakit: ${(e as Error).message}`);
      return null;
    }
  }

  async stop(): Promise<void> {
    if (this.client.alive) await this.client.request('train/stop', {});
  }
  async pause(): Promise<void> {
    if (this.client.alive) await this.client.request('train/pause', {});
  }

  /** Continue a run from its last checkpoint: the given one, or the project's newest unfinished run. */
  async resume(runDir?: string): Promise<string | null> {
    const dir = runDir ?? (this.root ? resumableRun(this.root) : null);
    if (!dir) {
      void this.ui.info('lorakit: there is no stopped run to resume in this project');
      return null;
    }
    const parsed = TrainSettings.safeParse(runSettings(dir));
    if (!parsed.success) {
      void this.ui.error(`lorakit: cannot resume ${dir}: its settings.json is missing or invalid`);
      return null;
    }
    if (this.busy) return null;
    if (!this.steps.length) this.readHistory(dir);
    return this.launch(parsed.data, dir, true);
  }

  /**
   * After a window reload (or a restart of VS Code) the newest run's charts and state come back from its folder:
   * finished, or stopped with a checkpoint that Resume continues.
   */
  private restoreLastRun(root: string): void {
    const dir = path.join(root, '.lorakit', 'runs');
    if (!fs.existsSync(dir)) return;
    const last = fs.readdirSync(dir).sort().pop();
    if (!last) return;
    const runDir = path.join(dir, last);
    this.readHistory(runDir);
    const settings = TrainSettings.safeParse(runSettings(runDir));
    if (settings.success) this.settings = settings.data;
    const adapterDir = path.join(runDir, 'adapter');
    if (fs.existsSync(path.join(adapterDir, 'adapter_config.json')))
      this.status = { state: 'done', runDir, adapterDir, message: 'the last run finished' };
    else if (resumableRun(root) === runDir)
      this.status = { state: 'stopped', runDir, message: 'the last run stopped before finishing; Resume continues it' };
  }

  /** after a window reload: the run's metrics so far, from its metrics.jsonl */
  private readHistory(runDir: string): void {
    const f = path.join(runDir, 'metrics.jsonl');
    if (!fs.existsSync(f)) return;
    for (const line of fs.readFileSync(f, 'utf8').split('\n').filter(Boolean)) {
      try {
        const m = JSON.parse(line);
        if ('eval_loss' in m) this.evals.push(m);
        else if ('loss' in m) this.steps.push(m);
      } catch {
        /* a torn last line */
      }
    }
  }

  async estimate(settings: TrainSettings): Promise<void> {
    try {
      const result = await this.client.request('estimate', { settings });
      this.ui.post({ type: 'estimate', result });
    } catch (e) {
      this.ui.post({ type: 'estimate', result: null, error: (e as Error).message });
    }
  }

  adapters() {
    return this.root ? listAdapters(this.root) : [];
  }
  merged() {
    return this.root ? listMerged(this.root) : [];
  }

  /** the panel's state for a (re)opened webview */
  initMessage(device?: { name: string; bytes: number }): ToPanel {
    return {
      type: 'init',
      settings: this.settings,
      status: this.status,
      steps: this.steps,
      evals: this.evals,
      adapters: this.adapters(),
      merged: this.merged(),
      device,
      trusted: this.ui.trusted(),
    };
  }

  /** A message from the webview: validated, then acted on. Malformed ones are rejected and logged. */
  async fromPanel(raw: unknown, device?: { name: string; bytes: number }): Promise<void> {
    const p = parseFromPanel(raw);
    if (!p.ok) {
      this.ui.log(`rejected a malformed message from the panel: ${p.why}`);
      this.ui.post({ type: 'error', message: `rejected: ${p.why}` });
      return;
    }
    const m: FromPanel = p.msg;
    switch (m.type) {
      case 'ready':
        return this.ui.post(this.initMessage(device));
      case 'estimate':
        this.settings = m.settings;
        return this.estimate(m.settings);
      case 'start':
        await this.start(m.settings);
        return;
      case 'stop':
        return this.stop();
      case 'pause':
        return this.pause();
      case 'resume':
        await this.resume(this.status.runDir);
        return;
      case 'pick': {
        const v = await this.ui.pick(m.field);
        if (v) this.ui.post({ type: 'picked', field: m.field, value: v });
        return;
      }
      case 'adapter':
        return this.adapterAction(m.action, m.dir);
    }
  }

  showStatus(): void {
    const { text, tooltip } = statusText(this.status, this.steps[this.steps.length - 1]);
    this.ui.status(text, tooltip);
  }
}
