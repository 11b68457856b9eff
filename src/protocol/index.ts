/**
 * The only types the extension, the sidecar and the webview share, with the validators each side runs on what it
 * receives. Two channels:
 * - extension ⇄ sidecar (a forked Node process): requests {id, method, params} answered by {id, result} or
 *   {id, error}; events {event, params} from the sidecar;
 * - extension ⇄ webview (postMessage): `ToPanel` and `FromPanel` messages, each {type, …}.
 */
import { z } from 'zod';

export const PROTOCOL_VERSION = 1;

const path = z.string().min(1, 'is empty');
const posInt = z.number().int().positive();

/** What a training run needs, as the panel and the right-click collect it. */
export const TrainSettings = z.object({
  model: path,
  data: path,
  rank: posInt.max(1024),
  alpha: z.number().positive().max(1e6),
  dropout: z.number().min(0).max(0.9),
  targets: z.string().min(1),
  quant: z.enum(['none', 'nf4', 'fp4']),
  doubleQuant: z.boolean(),
  blocksize: z
    .number()
    .int()
    .refine((b) => b >= 32 && b <= 4096 && (b & (b - 1)) === 0, 'must be a power of two from 32 to 4096'),
  seqLen: posInt.min(8).max(32768),
  batch: posInt.max(1024),
  gradAccum: posInt.max(1024),
  lr: z.number().positive(),
  steps: posInt.max(1e9).optional(),
  epochs: z.number().positive().max(1e6).optional(),
  backend: z.enum(['auto', 'cpu', 'cpu-reference', 'webgpu']),
});
export type TrainSettings = z.infer<typeof TrainSettings>;

export const MemBytes = z.object({
  weights: z.number(),
  lora: z.number(),
  optimizer: z.number(),
  activations: z.number(),
  workspace: z.number(),
  total: z.number(),
});
export type MemBytes = z.infer<typeof MemBytes>;

export const StepEvent = z.object({
  step: z.number(),
  total_steps: z.number(),
  loss: z.number(),
  lr: z.number(),
  grad_norm: z.number(),
  tokens_per_s: z.number(),
  step_ms: z.number(),
  mem: MemBytes,
  elapsed_s: z.number(),
});
export type StepEvent = z.infer<typeof StepEvent>;
export const EvalEvent = z.object({ step: z.number(), eval_loss: z.number(), eval_perplexity: z.number(), eval_tokens: z.number() });
export type EvalEvent = z.infer<typeof EvalEvent>;

export const RunState = z.enum(['idle', 'preparing', 'running', 'pausing', 'paused', 'stopping', 'stopped', 'done', 'failed']);
export type RunState = z.infer<typeof RunState>;

export const RunStatus = z.object({
  state: RunState,
  runDir: z.string().optional(),
  message: z.string().optional(),
  adapterDir: z.string().optional(),
  lastCheckpoint: z.string().optional(),
});
export type RunStatus = z.infer<typeof RunStatus>;

export const EstimateResult = z.object({
  bytes: MemBytes,
  fits: z.boolean(),
  device: z.object({ name: z.string(), bytes: z.number() }),
  params: z.object({ base: z.number(), trainable: z.number(), quantized: z.number() }),
  bitsPerParam: z.number().optional(),
});
export type EstimateResult = z.infer<typeof EstimateResult>;

export const ScanResult = z.object({ files: z.number(), bytes: z.number(), skipped: z.record(z.string(), z.number()) });
export type ScanResult = z.infer<typeof ScanResult>;

export const HubPlan = z.object({
  modelType: z.string(),
  files: z.number(),
  totalBytes: z.number(),
  downloadBytes: z.number(),
  /** training memory with the default settings, and the device it was measured against */
  trainBytes: z.number(),
  fits: z.boolean(),
  device: z.object({ name: z.string(), bytes: z.number() }),
});
export type HubPlan = z.infer<typeof HubPlan>;
export const HubProgress = z.object({
  id: z.string(),
  file: z.string(),
  done: z.number(),
  total: z.number(),
  bytesPerS: z.number(),
  etaS: z.number(),
});
export type HubProgress = z.infer<typeof HubProgress>;

// ---- extension → sidecar requests, and what each returns ----

export const Requests = {
  hello: {
    params: z.object({}),
    result: z.object({
      protocol: z.number(),
      version: z.string(),
      backends: z.array(z.string()),
      device: z.string(),
      memoryBytes: z.number(),
    }),
  },
  estimate: { params: z.object({ settings: TrainSettings }), result: EstimateResult },
  'data/scan': { params: z.object({ path }), result: ScanResult },
  'model/info': {
    params: z.object({ path }),
    result: z.object({ modelType: z.string(), params: z.number(), bytes: z.number(), quantized: z.boolean() }),
  },
  'train/start': {
    params: z.object({ settings: TrainSettings, out: path, resume: z.boolean() }),
    result: z.object({ runDir: z.string() }),
  },
  'train/stop': { params: z.object({}), result: z.object({ stopping: z.boolean() }) },
  'train/pause': { params: z.object({}), result: z.object({ pausing: z.boolean() }) },
  eval: {
    params: z.object({ model: path, adapter: z.string().optional(), data: path }),
    result: z.object({ loss: z.number(), perplexity: z.number(), tokens: z.number() }),
  },
  generate: {
    params: z.object({
      model: path,
      adapter: z.string().optional(),
      prompt: z.string(),
      maxNewTokens: posInt.max(4096),
      quant: z.enum(['none', 'nf4', 'fp4']).optional(),
    }),
    result: z.object({ text: z.string(), newTokens: z.number(), tokensPerS: z.number() }),
  },
  merge: {
    params: z.object({ model: path, adapter: path, out: path }),
    result: z.object({ out: z.string(), mergedInto: z.string(), kind: z.string(), mergedModules: z.number() }),
  },
  /** the run settings as a training job for transformers + PEFT on a cluster (lorakit export job --target hf) */
  'export/job': {
    params: z.object({ settings: TrainSettings, out: path }),
    result: z.object({
      out: z.string(),
      trainWindows: z.number(),
      evalWindows: z.number(),
      totalSteps: z.number(),
      warnings: z.array(z.string()),
    }),
  },
  'export/gguf': {
    params: z.object({ model: path, adapter: path, outDir: path, type: z.enum(['f32', 'f16', 'bf16', 'q8_0', 'q4_0']) }),
    result: z.object({
      outDir: z.string(),
      model: z.string(),
      adapter: z.string(),
      modelfile: z.string(),
      templateNote: z.string().optional(),
      ollamaCreate: z.string(),
    }),
  },
  'adapters/load': {
    params: z.object({ path }),
    result: z.object({ r: z.number(), alpha: z.number(), modules: z.number(), params: z.number(), baseModel: z.string().nullable() }),
  },
  /** the models in the Hugging Face cache */
  'hub/list': {
    params: z.object({}),
    result: z.object({ cache: z.string(), models: z.array(z.object({ id: z.string(), dir: z.string() })) }),
  },
  /** a model from the Hub into the cache (`planOnly`: config.json only, and the plan); progress as hub/progress events */
  'hub/pull': {
    params: z.object({ id: z.string().min(1), planOnly: z.boolean().optional() }),
    result: z.object({
      dir: z.string(),
      commit: z.string(),
      downloadedBytes: z.number(),
      cancelled: z.boolean(),
      plan: HubPlan.optional(),
    }),
  },
  'hub/cancel': { params: z.object({}), result: z.object({ cancelling: z.boolean() }) },
  /**
   * A completion from the sidecar's generation session (one base model, kept loaded; `adapter` is a PEFT folder,
   * loaded once and kept beside it). With `suffix`, fill-in-the-middle where the tokenizer has FIM tokens (the
   * session decides). `stream`: the text also goes out as complete/delta events with this request's id. A `cancel`
   * notification with this request's id ends it early: it still answers, with finishReason "cancelled".
   */
  complete: {
    params: z.object({
      model: path,
      adapter: z.string().min(1).optional(),
      prompt: z.string(),
      suffix: z.string().optional(),
      maxTokens: posInt.max(4096),
      temperature: z.number().min(0).max(5).optional(),
      seed: z.number().int().min(0).optional(),
      stop: z.array(z.string().min(1)).max(16).optional(),
      stream: z.boolean().optional(),
      /** token healing: the prompt's last token is taken back and written again (editor completions at a cursor) */
      heal: z.boolean().optional(),
    }),
    result: z.object({
      text: z.string(),
      finishReason: z.enum(['stop', 'length', 'cancelled']),
      promptTokens: z.number(),
      completionTokens: z.number(),
      /** prompt tokens whose keys and values came from the prefix cache */
      cachedTokens: z.number(),
      fim: z.boolean(),
      firstTokenMs: z.number(),
      tokensPerS: z.number(),
    }),
  },
  /**
   * Serve an adapter over HTTP (OpenAI- and Ollama-compatible, src/serve) from the sidecar's generation session:
   * the base is the one completions use (opened if need be), the adapter is loaded under `name` (made URL-safe).
   * One server at a time: a second start replaces the first.
   */
  'serve/start': {
    params: z.object({
      model: path,
      adapter: z.string().min(1).optional(),
      name: z.string().min(1).max(200).optional(),
      host: z.string().min(1).optional(),
      port: z.number().int().min(0).max(65535).optional(),
      apiKey: z.string().min(1).optional(),
    }),
    /** url: the server's root (OpenAI clients add /v1); modelId: the base's name; adapter: the adapter's name */
    result: z.object({ url: z.string(), modelId: z.string(), adapter: z.string().nullable() }),
  },
  'serve/stop': { params: z.object({}), result: z.object({ stopped: z.boolean() }) },
  /** the generation session: its base model (null before the first completion), how often a base was opened, adapters */
  'session/info': {
    params: z.object({}),
    result: z.object({ model: z.string().nullable(), opens: z.number(), fim: z.boolean(), adapters: z.array(z.string()) }),
  },
} as const;
export type Method = keyof typeof Requests;
export type Params<M extends Method> = z.infer<(typeof Requests)[M]['params']>;
export type Result<M extends Method> = z.infer<(typeof Requests)[M]['result']>;

export const Request = z.object({ id: z.number().int(), method: z.string(), params: z.unknown() });
/** extension → sidecar notifications (no id, no answer): `cancel` ends the request with that id early */
export const Notification = z.object({ method: z.literal('cancel'), params: z.object({ id: z.number().int() }) });
export type Notification = z.infer<typeof Notification>;
export type RpcError = { code: 'bad_request' | 'user_error' | 'busy' | 'internal'; message: string; detail?: string };
export type Response = { id: number; result: unknown } | { id: number; error: RpcError };

// ---- sidecar → extension events ----

export const Events = {
  log: z.object({ line: z.string() }),
  'train/state': RunStatus,
  /** every step since the previous message, in order: the sidecar batches them (at most ~10 messages/s), never drops */
  'train/steps': z.object({ steps: z.array(StepEvent) }),
  'train/eval': EvalEvent,
  /** a Hub download's progress (at most every 200 ms) */
  'hub/progress': HubProgress,
  /** streamed text of a `complete` request with `stream` (its id), as the session decides it */
  'complete/delta': z.object({ id: z.number().int(), text: z.string() }),
} as const;
export type EventName = keyof typeof Events;
export type EventParams<E extends EventName> = z.infer<(typeof Events)[E]>;
export type EventMessage = { [E in EventName]: { event: E; params: EventParams<E> } }[EventName];

/** Validate one message from the sidecar: a response or an event. */
export function parseFromSidecar(
  m: unknown,
): { kind: 'response'; msg: Response } | { kind: 'event'; msg: EventMessage } | { kind: 'invalid'; why: string } {
  if (m && typeof m === 'object' && 'event' in m) {
    const e = (m as { event: string }).event;
    const schema = Object.hasOwn(Events, e) ? Events[e as EventName] : undefined;
    if (!schema) return { kind: 'invalid', why: `unknown event "${e}"` };
    const p = schema.safeParse((m as unknown as { params: unknown }).params);
    return p.success
      ? { kind: 'event', msg: { event: e, params: p.data } as EventMessage }
      : { kind: 'invalid', why: `event ${e}: ${issues(p.error)}` };
  }
  if (m && typeof m === 'object' && 'id' in m && ('result' in m || 'error' in m)) return { kind: 'response', msg: m as Response };
  return { kind: 'invalid', why: 'neither a response nor an event' };
}

// ---- webview ⇄ extension ----

export const FromPanel = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready') }),
  z.object({ type: z.literal('estimate'), settings: TrainSettings }),
  z.object({ type: z.literal('start'), settings: TrainSettings }),
  z.object({ type: z.literal('stop') }),
  z.object({ type: z.literal('pause') }),
  z.object({ type: z.literal('resume') }),
  z.object({ type: z.literal('pick'), field: z.enum(['model', 'data']) }),
  z.object({ type: z.literal('adapter'), action: z.enum(['merge', 'activate', 'compare', 'reveal']), dir: path }),
]);
export type FromPanel = z.infer<typeof FromPanel>;

export const AdapterInfo = z.object({
  dir: z.string(),
  run: z.string(),
  /** what the user calls it: the name given with Rename, else the data folder and the time */
  name: z.string(),
  created: z.string(),
  active: z.boolean(),
  rank: z.number().optional(),
  steps: z.number().optional(),
  trainLoss: z.number().optional(),
  evalLoss: z.number().optional(),
  /** the eval loss when there is one, else the train loss */
  finalLoss: z.number().optional(),
});
export type AdapterInfo = z.infer<typeof AdapterInfo>;

/** a model merged from an adapter, in the project's .lorakit/merged/ */
export const MergedInfo = z.object({ dir: z.string(), name: z.string(), created: z.string() });
export type MergedInfo = z.infer<typeof MergedInfo>;

export type ToPanel =
  | {
      type: 'init';
      settings: Partial<TrainSettings>;
      status: RunStatus;
      steps: StepEvent[];
      evals: EvalEvent[];
      adapters: AdapterInfo[];
      merged?: MergedInfo[];
      device?: { name: string; bytes: number };
      trusted: boolean;
    }
  | { type: 'estimate'; result: EstimateResult | null; error?: string }
  | { type: 'status'; status: RunStatus }
  | { type: 'steps'; steps: StepEvent[] }
  | { type: 'eval'; eval: EvalEvent }
  | { type: 'adapters'; adapters: AdapterInfo[]; merged?: MergedInfo[] }
  | { type: 'picked'; field: 'model' | 'data'; value: string }
  /** settings changed outside the panel (lorakit.* in the settings): these fields replace the form's */
  | { type: 'settings'; settings: Partial<TrainSettings> }
  | { type: 'error'; message: string };

/** Validate a webview message; the reason when it is not one. */
export function parseFromPanel(m: unknown): { ok: true; msg: FromPanel } | { ok: false; why: string } {
  const p = FromPanel.safeParse(m);
  return p.success ? { ok: true, msg: p.data } : { ok: false, why: issues(p.error) };
}

// ---- the Compare panel (webview) ⇄ extension: one prompt, the base and the adapter side by side ----

export const FromCompare = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready') }),
  z.object({
    type: z.literal('run'),
    prompt: z.string().min(1, 'is empty').max(100_000),
    temperature: z.number().min(0).max(2),
    maxTokens: posInt.max(1024),
  }),
  z.object({ type: z.literal('stop') }),
]);
export type FromCompare = z.infer<typeof FromCompare>;
export type CompareSide = 'base' | 'adapter';

export type ToCompare =
  /** what the panel compares, the last run's settings, and its text so far (a reopened panel shows it again) */
  | {
      type: 'init';
      adapter: string;
      model: string;
      prompt: string;
      temperature: number;
      maxTokens: number;
      text: Record<CompareSide, string>;
      running: boolean;
    }
  /** a run began: the columns start again from the prompt */
  | { type: 'start'; prompt: string; temperature: number }
  | { type: 'delta'; side: CompareSide; text: string }
  | { type: 'done'; side: CompareSide; finishReason: 'stop' | 'length' | 'cancelled'; tokens: number; tokensPerS: number }
  | { type: 'error'; side?: CompareSide; message: string }
  /** both sides have finished */
  | { type: 'idle' };

/** the first problems of a failed parse, as "field: problem" */
export function issues(e: z.ZodError): string {
  return e.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`)
    .join('; ');
}
