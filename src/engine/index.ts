/**
 * lorakit's engine as a library: the only door for its callers (the CLI, the VS Code sidecar, the demo). What is
 * not exported here is the engine's own business; tests may reach further in.
 */
// errors, versions, formatting
export { UserError, ConfigError, CancelledError } from './core/errors';
export { VERSION } from './core/version';
export { formatBytes, formatDuration } from './core/format';
export { readJson } from './core/fsx';
export type { MemFigures, Backend } from './core/backend';
export { MEM_TAGS } from './core/backend';
export type { QuantConfig } from './core/qweight';
export { bitsPerParam } from './core/qweight';

// the one table of training settings
export { TRAIN_FIELDS, BACKENDS, SCHEDULES, resolveTrainConfig, trainDefaults, fieldHelp, checkField } from './config';
export type { TrainConfig, TrainSettingsInput, FieldName, Field } from './config';

// files
export { loadSpec } from './formats/config';
export type { ModelSpec } from './formats/config';
export { openModelFolder } from './formats/model-folder';
export type { ModelFolder } from './formats/model-folder';
export { SafetensorsFile, TensorStore, tensorTotals } from './formats/safetensors';
export { TextTokenizer } from './formats/tokenizer';
export { bnbKind } from './formats/bnb';
export { readAdapterConfig } from './formats/lora-config';
export { defaultLoraConfig, parseTargets } from './formats/lora-config';
export type { LoraConfig } from './formats/lora-config';
export { readFolder, summarizeSkipped } from './data/folder';

// backends
export { autoChoice, createBackend, mayHaveGpu, workspaceSizer, probeDevices, releaseDevices } from './backend/select';
export type { BackendName } from './backend/select';
export { cpuKernels } from './ops/wasm-kernels';

// tasks
export { openModel } from './tasks/session';
export { train } from './tasks/train/trainer';
export type { TrainResult, StepMetrics, EvalMetrics, TrainEvents } from './tasks/train/trainer';
export { evaluateFile, DEFAULT_EVAL_WINDOW } from './tasks/evaluate';
export { estimateMemory, baseParams, quantizedParams } from './tasks/estimate';
export type { Estimate } from './tasks/estimate';
export { generate } from './tasks/generate';
export { GenerationSession, PREFILL_CHUNK } from './tasks/serve/session';
export type { CompletionRequest, Completion, FinishReason, AdapterInfo, SessionOptions } from './tasks/serve/session';
export type { ChatMessage } from './formats/tokenizer';
export { mergeQLoRA, originalOf } from './tasks/merge/qlora';
export { quantizeModel } from './tasks/quantize';
export { exportJob } from './tasks/export-job';
export type { ExportJobResult } from './tasks/export-job';

// the Hugging Face Hub and its cache
export { pullModel } from './tasks/pull';
export type { PullPlan, PullProgress, PullResult, PullOptions } from './tasks/pull';
export { resolveModel, listCachedModels, hubCacheDir, parseHubId } from './formats/hf-cache';
export type { CachedModel } from './formats/hf-cache';
export { exportModelGguf, exportAdapterGguf, GGUF_TYPES } from './tasks/export/gguf';
export type { GgufTypeName, GgufExportReport } from './tasks/export/gguf';
export { exportForOllama } from './tasks/export/ollama';
export type { OllamaExportReport } from './tasks/export/ollama';

// tiny models and data made on the spot (the demo, the bench, the tests)
export { makeTinyModel, makeDatasets } from './fixtures/model';
export { makePatternFolder, PATTERNS, PATTERN_PREFIX, PATTERN_TRAINING } from './fixtures/pattern';
