/**
 * The Hugging Face Hub's HTTP API, the only engine code that touches the network. The endpoint and the fetch are
 * injectable, so the tests run it against a local mock. Facts of the API used here:
 * - GET /api/models/{repo}/revision/{rev}?blobs=true: the commit (`sha`) and the files (`siblings`: `rfilename`,
 *   `size`, `lfs.sha256` for LFS files);
 * - HEAD /{repo}/resolve/{rev}/{file}: `X-Repo-Commit`, `ETag` (the git blob sha1 of a small file), and for an
 *   LFS file a redirect to the CDN carrying `X-Linked-Etag` (its sha256) and `X-Linked-Size`;
 * - errors carry `X-Error-Code` (GatedRepo, RepoNotFound, RevisionNotFound, EntryNotFound) and `X-Error-Message`.
 */
import { UserError } from '../core/errors';
import { VERSION } from '../core/version';
import { HubEnv, hubToken } from '../formats/hf-cache';

export type Fetch = typeof fetch;

export interface HubOptions {
  /** default $HF_ENDPOINT, else https://huggingface.co */
  endpoint?: string;
  /** default $HF_TOKEN, else the token file */
  token?: string;
  fetch?: Fetch;
  env?: HubEnv;
}

export interface Sibling {
  rfilename: string;
  size?: number;
  lfs?: { sha256: string; size: number };
}

export interface RepoInfo {
  id: string;
  sha: string;
  gated?: boolean | string;
  siblings: Sibling[];
}

export interface FileMeta {
  /** where the bytes are: the CDN for an LFS file, else the resolve URL */
  url: string;
  /** the etag, quotes and W/ stripped: the blob's name in the cache */
  etag: string;
  commit: string;
  size: number;
}

const HOPS = 5;

export class HubClient {
  readonly endpoint: string;
  private readonly token: string | undefined;
  private readonly fetchImpl: Fetch;

  constructor(o: HubOptions = {}) {
    const env = o.env ?? process.env;
    this.endpoint = (o.endpoint ?? env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
    this.token = o.token ?? hubToken(env);
    this.fetchImpl = o.fetch ?? fetch;
  }

  repoUrl(repo: string): string {
    return `${this.endpoint}/${repo}`;
  }

  resolveUrl(repo: string, revision: string, file: string): string {
    return `${this.endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
  }

  async repoInfo(repo: string, revision: string, signal?: AbortSignal): Promise<RepoInfo> {
    const url = `${this.endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
    const r = await this.request(url, { signal }, repo);
    await this.check(r, url, repo);
    const info = (await r.json().catch(() => null)) as RepoInfo | null;
    if (!info || typeof info.sha !== 'string' || !Array.isArray(info.siblings))
      throw new UserError('the Hub answered without a commit and a file list', url);
    return info;
  }

  /** HEAD a file: its etag, commit and size; relative redirects (a renamed repo) are followed, a CDN one is not */
  async fileMeta(repo: string, revision: string, file: string, signal?: AbortSignal): Promise<FileMeta> {
    let url = this.resolveUrl(repo, revision, file);
    for (let hop = 0; hop <= HOPS; hop++) {
      const r = await this.request(url, { method: 'HEAD', redirect: 'manual', signal, headers: { 'accept-encoding': 'identity' } }, repo);
      const loc = r.headers.get('location');
      const linked = r.headers.get('x-linked-etag');
      if (r.status >= 300 && r.status < 400 && loc && !linked && loc.startsWith('/')) {
        url = new URL(loc, url).toString(); // the Hub's own redirect: ask again there
        continue;
      }
      if (r.status >= 400) await this.check(r, url, repo, file);
      const etag = normalizeEtag(linked ?? r.headers.get('etag'));
      const commit = r.headers.get('x-repo-commit');
      const size = Number(r.headers.get('x-linked-size') ?? r.headers.get('content-length'));
      if (!etag || !commit) throw new UserError('the Hub sent no ETag or X-Repo-Commit (a proxy in the way?)', url);
      return { url: loc ? new URL(loc, url).toString() : url, etag, commit, size: Number.isFinite(size) ? size : -1 };
    }
    throw new UserError(`more than ${HOPS} redirects`, url);
  }

  /** a GET of the file's bytes (following redirects), from `start` when resuming */
  async get(url: string, repo: string, start: number, signal?: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { 'accept-encoding': 'identity' };
    if (start > 0) headers.range = `bytes=${start}-`;
    const r = await this.request(url, { signal, headers }, repo);
    if (r.status === 416 && start > 0) return r; // the partial file is already whole (or wrong): the caller decides
    await this.check(r, url, repo);
    return r;
  }

  private async request(url: string, init: RequestInit, repo: string): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('user-agent', `lorakit/${VERSION}`);
    // the token goes to the Hub only, never to a CDN on another host
    if (this.token && new URL(url).origin === new URL(this.endpoint).origin) headers.set('authorization', `Bearer ${this.token}`);
    try {
      return await this.fetchImpl(url, { ...init, headers });
    } catch (e) {
      if ((e as Error).name === 'AbortError') throw e;
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new UserError(
        `cannot reach the Hub (${cause?.code ?? cause?.message ?? (e as Error).message}): check the network, or set HF_HUB_OFFLINE=1 to use only the cache`,
        url,
      );
    }
  }

  /** an error status as one line that says what to do */
  private async check(r: Response, url: string, repo: string, file?: string): Promise<void> {
    if (r.ok) return;
    const code = r.headers.get('x-error-code') ?? '';
    const msg = r.headers.get('x-error-message') ?? '';
    await r.body?.cancel().catch(() => undefined);
    const page = this.repoUrl(repo);
    if (code === 'GatedRepo' || (r.status === 403 && /gated|access/i.test(msg)))
      throw new UserError(
        `${repo} is gated: ask for access at ${page}, then log in (\`huggingface-cli login\`, or set HF_TOKEN)` +
          (this.token ? ' — the token in use has no access yet' : ''),
        url,
      );
    if (r.status === 401 || r.status === 403)
      throw new UserError(
        this.token
          ? `the Hub refused the token (${r.status}${msg ? `: ${msg}` : ''}): check it at ${this.endpoint}/settings/tokens, and that it may read ${repo}`
          : `${repo} needs a login (${r.status}): it is private, gated or misspelt. Log in with \`huggingface-cli login\` or set HF_TOKEN`,
        url,
      );
    if (r.status === 404) {
      if (code === 'RevisionNotFound') throw new UserError(`${repo} has no revision by that name (404)`, url);
      if (code === 'EntryNotFound' || file) throw new UserError(`${repo} has no such file at this revision (404)`, url);
      throw new UserError(`no model ${repo} on the Hub (404): check the name at ${page}`, url);
    }
    throw new UserError(`the Hub answered ${r.status} ${r.statusText}${msg ? `: ${msg}` : ''}`, url);
  }
}

/** `W/"abc"` → `abc` */
export function normalizeEtag(etag: string | null): string | null {
  if (!etag) return null;
  return etag.replace(/^W\//, '').replace(/^"|"$/g, '') || null;
}
