/**
 * The Hugging Face cache, laid out as huggingface_hub lays it out, so the Python tools and lorakit share files:
 *   $HF_HUB_CACHE/models--ORG--NAME/blobs/<etag>            the files, named by their etag (quotes stripped)
 *   $HF_HUB_CACHE/models--ORG--NAME/snapshots/<commit>/<f>  relative symlinks into blobs/
 *   $HF_HUB_CACHE/models--ORG--NAME/refs/<revision>         the commit a branch or tag pointed to
 * No network here: reading the cache, and `--model ORG/NAME` resolved through it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '../core/errors';
import { writeFileAtomic } from '../core/fsx';

export interface HubEnv {
  [name: string]: string | undefined;
}

/** $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface */
export function hfHome(env: HubEnv = process.env): string {
  return env.HF_HOME || path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'huggingface');
}

/** $HF_HUB_CACHE (or the older $HUGGINGFACE_HUB_CACHE), else $HF_HOME/hub */
export function hubCacheDir(env: HubEnv = process.env): string {
  return env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE || path.join(hfHome(env), 'hub');
}

/** $HF_TOKEN, else the file `huggingface-cli login` writes ($HF_TOKEN_PATH, default $HF_HOME/token) */
export function hubToken(env: HubEnv = process.env): string | undefined {
  if (env.HF_TOKEN?.trim()) return env.HF_TOKEN.trim();
  try {
    return fs.readFileSync(env.HF_TOKEN_PATH || path.join(hfHome(env), 'token'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

export function isOffline(env: HubEnv = process.env): boolean {
  return ['1', 'on', 'yes', 'true'].includes((env.HF_HUB_OFFLINE ?? '').toLowerCase());
}

export interface HubId {
  repo: string;
  revision: string;
}

const NAME = '[A-Za-z0-9][A-Za-z0-9._-]*';
const HUB_ID = new RegExp(`^(${NAME}/${NAME})(?:@([A-Za-z0-9._/-]+))?$`);
export const COMMIT = /^[0-9a-f]{40}$/;

/** `ORG/NAME[@REVISION]`, or null when the text is not a Hub id */
export function parseHubId(text: string): HubId | null {
  const m = HUB_ID.exec(text);
  if (!m || m[1].includes('..') || m[1].endsWith('.git')) return null;
  return { repo: m[1], revision: m[2] ?? 'main' };
}

export function repoDir(repo: string, cache = hubCacheDir()): string {
  return path.join(cache, `models--${repo.replace(/\//g, '--')}`);
}

/** the commit a revision points to in the cache: a commit hash as is, else refs/<revision> */
export function cachedCommit(repo: string, revision: string, cache = hubCacheDir()): string | null {
  if (COMMIT.test(revision)) return revision;
  try {
    const c = fs.readFileSync(path.join(repoDir(repo, cache), 'refs', revision), 'utf8').trim();
    return COMMIT.test(c) ? c : null;
  } catch {
    return null;
  }
}

export function writeRef(repo: string, revision: string, commit: string, cache = hubCacheDir()): void {
  if (revision === commit) return; // huggingface_hub writes no ref for a commit hash
  writeFileAtomic(path.join(repoDir(repo, cache), 'refs', revision), commit);
}

export function blobPath(repo: string, etag: string, cache = hubCacheDir()): string {
  return path.join(repoDir(repo, cache), 'blobs', etag);
}

export function snapshotDir(repo: string, commit: string, cache = hubCacheDir()): string {
  return path.join(repoDir(repo, cache), 'snapshots', commit);
}

/**
 * Point snapshots/<commit>/<file> at blobs/<etag> with a relative symlink, as huggingface_hub does (the link is
 * made beside its place and renamed over it, so a reader never sees a half-made one). Where links cannot be made,
 * the blob is copied.
 */
export function linkIntoSnapshot(repo: string, commit: string, file: string, etag: string, cache = hubCacheDir()): string {
  const link = path.join(snapshotDir(repo, commit, cache), file);
  const blob = blobPath(repo, etag, cache);
  fs.mkdirSync(path.dirname(link), { recursive: true });
  const tmp = `${link}.${process.pid}.link`;
  fs.rmSync(tmp, { force: true });
  try {
    fs.symlinkSync(path.relative(path.dirname(link), blob), tmp);
  } catch {
    fs.copyFileSync(blob, tmp);
  }
  fs.renameSync(tmp, link);
  return link;
}

/** the snapshot folder of a cached model with its config.json, or null */
export function cachedSnapshot(id: HubId, cache = hubCacheDir()): string | null {
  const commit = cachedCommit(id.repo, id.revision, cache);
  if (!commit) return null;
  const dir = snapshotDir(id.repo, commit, cache);
  return fs.existsSync(path.join(dir, 'config.json')) ? dir : null;
}

/**
 * `--model`: a folder that exists is used as it is; otherwise a Hub id (`ORG/NAME[@REVISION]`) is looked up in
 * the cache. An id that is not cached is an error that says how to get it; anything else is returned unchanged
 * for the caller to report.
 */
export function resolveModel(arg: string, env: HubEnv = process.env): string {
  if (fs.existsSync(arg)) return arg;
  const id = parseHubId(arg);
  if (!id) return arg;
  const cache = hubCacheDir(env);
  const dir = cachedSnapshot(id, cache);
  if (dir) return dir;
  const offline = isOffline(env) ? ' (HF_HUB_OFFLINE is set: only the cache is used)' : '';
  throw new UserError(`not a folder, and not in the Hugging Face cache ${cache}${offline}: download it with \`lorakit pull ${arg}\``, arg);
}

export interface CachedModel {
  id: string;
  dir: string;
  revision: string;
  commit: string;
}

/** the models in the cache that have a config.json and safetensors weights: one entry per ref (or snapshot) */
export function listCachedModels(cache = hubCacheDir()): CachedModel[] {
  let names: string[];
  try {
    names = fs.readdirSync(cache).filter((n) => n.startsWith('models--'));
  } catch {
    return [];
  }
  const found: CachedModel[] = [];
  for (const n of names.sort()) {
    const repo = n.slice('models--'.length).replace(/--/g, '/');
    const base = path.join(cache, n);
    const refs = safeList(path.join(base, 'refs'));
    const snaps = safeList(path.join(base, 'snapshots'));
    const seen = new Set<string>();
    for (const rev of refs) {
      const commit = cachedCommit(repo, rev, cache);
      if (commit && snaps.includes(commit)) {
        seen.add(commit);
        found.push({ id: rev === 'main' ? repo : `${repo}@${rev}`, dir: snapshotDir(repo, commit, cache), revision: rev, commit });
      }
    }
    for (const commit of snaps.filter((c) => !seen.has(c)))
      found.push({ id: `${repo}@${commit}`, dir: snapshotDir(repo, commit, cache), revision: commit, commit });
  }
  return found.filter((m) => {
    const files = safeList(m.dir);
    return files.includes('config.json') && files.some((f) => f.endsWith('.safetensors'));
  });
}

function safeList(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}
