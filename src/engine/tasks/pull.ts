/**
 * `lorakit pull ORG/NAME[@REVISION]`: a model from the Hugging Face Hub into the shared cache, only the files
 * lorakit reads (config, safetensors weights and their index, tokenizer files; never a pickle .bin). config.json
 * comes first: an architecture lorakit cannot train is refused before any weight, and the plan (sizes, the
 * training memory estimate) is shown before the download starts. Blobs already in the cache are not fetched again.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../core/errors';
import { formatBytes } from '../core/format';
import { resolveTrainConfig } from '../config';
import { ModelSpec, parseSpec } from '../formats/config';
import { blobPath, cachedSnapshot, hubCacheDir, isOffline, linkIntoSnapshot, parseHubId, snapshotDir, writeRef } from '../formats/hf-cache';
import { downloadBlob } from '../hub/download';
import { FileMeta, HubClient, HubOptions, Sibling } from '../hub/http';
import { Estimate, estimateMemory } from './estimate';

/** the tokenizer and generation files lorakit (and transformers beside it) reads */
const SMALL_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'vocab.json',
  'merges.txt',
  'chat_template.jinja',
  'chat_template.json',
];
const INDEX = 'model.safetensors.index.json';

export interface PullFile {
  name: string;
  size: number;
  /** already whole in the cache */
  cached: boolean;
}

export interface PullPlan {
  repo: string;
  revision: string;
  commit: string;
  spec: ModelSpec;
  files: PullFile[];
  totalBytes: number;
  /** what is left to fetch (partial files count for what they hold) */
  downloadBytes: number;
  /** training memory with the default settings (`estimateFor`) */
  estimate: Estimate;
  estimateFor: { rank: number; seqLen: number; batch: number };
}

export interface PullProgress {
  file: string;
  done: number;
  total: number;
  bytesPerS: number;
  etaS: number;
}

export interface PullOptions extends HubOptions {
  cacheDir?: string;
  signal?: AbortSignal;
  /** stop after the plan (nothing but config.json and the index is downloaded) */
  planOnly?: boolean;
  onPlan?: (plan: PullPlan) => void;
  onProgress?: (p: PullProgress) => void;
}

export interface PullResult {
  id: string;
  repo: string;
  revision: string;
  commit: string;
  /** the snapshot folder: a model folder every command takes */
  dir: string;
  files: string[];
  downloadedBytes: number;
  plan?: PullPlan;
}

export async function pullModel(idText: string, o: PullOptions = {}): Promise<PullResult> {
  const id = parseHubId(idText);
  if (!id) throw new UserError('not a Hugging Face model id (ORG/NAME, optionally @REVISION)', idText);
  const env = o.env ?? process.env;
  const cache = o.cacheDir ?? hubCacheDir(env);
  const { repo, revision } = id;
  if (isOffline(env)) {
    const dir = cachedSnapshot(id, cache);
    if (!dir) throw new UserError(`HF_HUB_OFFLINE is set and ${repo}@${revision} is not in the cache ${cache}`, idText);
    return { id: idText, repo, revision, commit: path.basename(dir), dir, files: fs.readdirSync(dir), downloadedBytes: 0 };
  }
  const hub = new HubClient(o);
  const info = await hub.repoInfo(repo, revision, o.signal);
  const commit = info.sha;
  const names = new Set(info.siblings.map((s) => s.rfilename));
  if (!names.has('config.json')) throw new UserError(`${repo} has no config.json: not a transformers model`, hub.repoUrl(repo));

  const metas = new Map<string, FileMeta>();
  let downloaded = 0;
  /** a small file fetched whole before the plan (config.json, the index) */
  const early = async (name: string): Promise<string> => {
    const meta = await hub.fileMeta(repo, commit, name, o.signal);
    metas.set(name, meta);
    const blob = blobPath(repo, meta.etag, cache);
    if (!fs.existsSync(blob)) downloaded += await downloadBlob(hub, repo, name, meta, blob, { signal: o.signal });
    return fs.readFileSync(blob, 'utf8');
  };
  const configUrl = hub.resolveUrl(repo, commit, 'config.json');
  const spec = parseSpec(parseJson(await early('config.json'), configUrl), configUrl);

  const weights = await weightFiles(info.siblings, names, hub.resolveUrl(repo, commit, INDEX), hub.repoUrl(repo), early);
  const wanted = [...SMALL_FILES.filter((f) => names.has(f) && f !== 'config.json'), ...(names.has(INDEX) ? [INDEX] : []), ...weights];
  for (const name of wanted) if (!metas.has(name)) metas.set(name, await hub.fileMeta(repo, commit, name, o.signal));

  const files: PullFile[] = ['config.json', ...wanted].map((name) => {
    const m = metas.get(name)!;
    return { name, size: m.size, cached: fs.existsSync(blobPath(repo, m.etag, cache)) };
  });
  const left = (f: PullFile) => (f.cached ? 0 : f.size - partialSize(blobPath(repo, metas.get(f.name)!.etag, cache)));
  const t = resolveTrainConfig({ model: '-', data: '-', out: '-' });
  const plan: PullPlan = {
    repo,
    revision,
    commit,
    spec,
    files,
    totalBytes: files.reduce((a, f) => a + f.size, 0),
    downloadBytes: files.reduce((a, f) => a + left(f), 0),
    estimateFor: { rank: t.lora.r, seqLen: t.seqLen, batch: t.batch },
    estimate: estimateMemory({ spec, lora: t.lora, seqLen: t.seqLen, batch: t.batch, gradCheckpoint: t.gradCheckpoint, quant: t.quant }),
  };
  o.onPlan?.(plan);
  const dir = snapshotDir(repo, commit, cache);
  if (o.planOnly) return { id: idText, repo, revision, commit, dir, files: files.map((f) => f.name), downloadedBytes: downloaded, plan };

  checkSpace(cache, plan.downloadBytes);
  const progress = meter(plan.downloadBytes, o.onProgress);
  for (const f of files) {
    if (f.cached) continue;
    const meta = metas.get(f.name)!;
    const blob = blobPath(repo, meta.etag, cache);
    if (fs.existsSync(blob)) continue; // the same blob under another name
    progress.file = f.name;
    downloaded += await downloadBlob(hub, repo, f.name, meta, blob, { signal: o.signal, onBytes: progress.add });
  }
  progress.end();
  // the links last, config.json last of all: a snapshot with a config.json is a whole one
  for (const f of [...files.slice(1), files[0]]) linkIntoSnapshot(repo, commit, f.name, metas.get(f.name)!.etag, cache);
  writeRef(repo, revision, commit, cache);
  return { id: idText, repo, revision, commit, dir, files: files.map((f) => f.name), downloadedBytes: downloaded, plan };
}

/** the safetensors weights: the shards the index names, else model.safetensors, else every top-level .safetensors */
async function weightFiles(
  siblings: Sibling[],
  names: Set<string>,
  url: string,
  page: string,
  fetchSmall: (name: string) => Promise<string>,
): Promise<string[]> {
  if (names.has(INDEX)) {
    const map = (parseJson(await fetchSmall(INDEX), url) as { weight_map?: unknown } | null)?.weight_map;
    if (!map || typeof map !== 'object') throw new UserError('no weight_map', url);
    const shards = [...new Set(Object.values(map as Record<string, string>))].sort();
    const missing = shards.filter((s) => !names.has(s));
    if (missing.length) throw new UserError(`the index names shards the repository does not have: ${missing.join(', ')}`, url);
    return shards;
  }
  if (names.has('model.safetensors')) return ['model.safetensors'];
  const all = siblings.map((s) => s.rfilename).filter((n) => n.endsWith('.safetensors') && !n.includes('/'));
  if (all.length) return all.sort();
  const pickles = siblings.some((s) => /\.(bin|pt|pth|ckpt)$/.test(s.rfilename));
  throw new UserError(
    `no safetensors weights${pickles ? ' (only pickle .bin files, which lorakit never loads)' : ''}: pick a repository with *.safetensors`,
    page,
  );
}

function parseJson(text: string, url: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`not valid JSON (${(e as Error).message})`, url);
  }
}

function partialSize(blob: string): number {
  try {
    return fs.statSync(`${blob}.incomplete`).size;
  } catch {
    return 0;
  }
}

/** refuse early when the cache's disk cannot hold what is left to download */
function checkSpace(cache: string, need: number): void {
  if (need <= 0) return;
  fs.mkdirSync(cache, { recursive: true });
  let free: number;
  try {
    const s = fs.statfsSync(cache);
    free = s.bavail * s.bsize;
  } catch {
    return;
  }
  if (free < need)
    throw new UserError(`not enough disk space: the download needs ${formatBytes(need)}, ${formatBytes(free)} is free`, cache);
}

/** bytes, rate and ETA, reported at most every 200 ms and once at the end */
function meter(total: number, report?: (p: PullProgress) => void) {
  const t0 = Date.now();
  let done = 0;
  let last = 0;
  const m = {
    file: '',
    emit() {
      const s = (Date.now() - t0) / 1000;
      const rate = s > 0 ? done / s : 0;
      report?.({ file: m.file, done, total, bytesPerS: rate, etaS: rate > 0 ? (total - done) / rate : Infinity });
    },
    add: (n: number) => {
      done += n;
      if (Date.now() - last >= 200) {
        last = Date.now();
        m.emit();
      }
    },
    end: () => m.emit(),
  };
  return m;
}
