/**
 * A mock Hugging Face Hub on 127.0.0.1 (node:http), answering as the Hub does for what lorakit uses:
 * - GET /api/models/{repo}/revision/{rev}[?blobs=true]: {id, sha, siblings[{rfilename, size, blobId, lfs?}]};
 * - HEAD/GET /{repo}/resolve/{rev}/{file}: small files served with ETag "<git blob sha1>" and X-Repo-Commit;
 *   LFS files (*.safetensors) answered with a 302 to /cdn-lfs/<sha256> carrying X-Linked-Etag and X-Linked-Size;
 * - the "CDN" serves Range requests (206 + Content-Range);
 * - a gated repository answers 401 (no token) or 403 (a token without access) with X-Error-Code: GatedRepo;
 *   an unknown one 404 RepoNotFound (401 without a token, as the Hub does, to hide private repositories);
 * - faults on demand: drop the connection after N bytes of a file (once), or serve wrong bytes.
 * It logs every request, so a test can count what was downloaded.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';

export interface MockRepo {
  /** a model folder whose files are the repository's */
  dir: string;
  gated?: boolean;
  /** the token that has access to a gated repository */
  token?: string;
}

export interface Logged {
  method: string;
  url: string;
  range?: string;
  auth?: string;
  status: number;
  bytes: number;
}

interface FileEntry {
  name: string;
  data: Buffer;
  lfs: boolean;
  sha1: string;
  sha256: string;
}

const gitSha1 = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

export class MockHub {
  readonly log: Logged[] = [];
  /** drop the connection after this many bytes of the named file, once */
  dropAfter: { file: string; bytes: number } | null = null;
  /** serve this file's bytes altered (its etag stays the true one) */
  corrupt: string | null = null;
  /** slow the CDN down: bytes per chunk and a pause between chunks (ms) */
  throttle: { chunk: number; ms: number } | null = null;
  private repos = new Map<string, { commit: string; files: FileEntry[]; gated: boolean; token?: string }>();
  private server = http.createServer((q, s) => this.handle(q, s));
  endpoint = '';

  add(id: string, repo: MockRepo): string {
    const files = fs
      .readdirSync(repo.dir)
      .sort()
      .map((name) => {
        const data = fs.readFileSync(path.join(repo.dir, name));
        return {
          name,
          data,
          lfs: /\.(safetensors|bin)$/.test(name),
          sha1: gitSha1(data),
          sha256: createHash('sha256').update(data).digest('hex'),
        };
      });
    const commit = createHash('sha1')
      .update(id + files.map((f) => f.sha1).join())
      .digest('hex');
    this.repos.set(id, { commit, files, gated: !!repo.gated, token: repo.token });
    return commit;
  }

  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.endpoint;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  /** bytes of file content sent (resolve + CDN GETs) since `from` in the log */
  bytesSent(from = 0): number {
    return this.log.slice(from).reduce((a, l) => a + l.bytes, 0);
  }

  private handle(q: http.IncomingMessage, s: http.ServerResponse): void {
    const entry: Logged = { method: q.method!, url: q.url!, range: q.headers.range, auth: q.headers.authorization, status: 0, bytes: 0 };
    this.log.push(entry);
    s.on('finish', () => (entry.status = s.statusCode));
    const url = new URL(q.url!, 'http://x');
    const fail = (status: number, code: string, message: string) => {
      s.writeHead(status, { 'x-error-code': code, 'x-error-message': message, 'content-type': 'application/json' });
      s.end(JSON.stringify({ error: message }));
    };
    let m = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    if (m) {
      const repo = this.access(m[1], q, fail);
      if (!repo) return;
      const rev = decodeURIComponent(m[2]);
      if (rev !== 'main' && rev !== repo.commit) return fail(404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      const siblings = repo.files.map((f) => ({
        rfilename: f.name,
        ...(url.searchParams.get('blobs') === 'true' ? { size: f.data.length, blobId: f.sha1 } : {}),
        ...(f.lfs ? { lfs: { sha256: f.sha256, size: f.data.length, pointerSize: 134 } } : {}),
      }));
      s.writeHead(200, { 'content-type': 'application/json' });
      return void s.end(JSON.stringify({ id: m[1], modelId: m[1], sha: repo.commit, gated: repo.gated ? 'manual' : false, siblings }));
    }
    m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (m) {
      const repo = this.access(m[1], q, fail);
      if (!repo) return;
      const rev = decodeURIComponent(m[2]);
      if (rev !== 'main' && rev !== repo.commit) return fail(404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      const f = repo.files.find((x) => x.name === decodeURIComponent(m![3]));
      if (!f) return fail(404, 'EntryNotFound', 'Entry not found');
      if (f.lfs) {
        s.writeHead(302, {
          location: `${this.endpoint}/cdn-lfs/${f.sha256}?file=${encodeURIComponent(f.name)}`,
          'x-repo-commit': repo.commit,
          'x-linked-etag': `"${f.sha256}"`,
          'x-linked-size': String(f.data.length),
          etag: `"${f.sha1}"`,
        });
        return void s.end();
      }
      return this.send(q, s, f, f.sha1, { 'x-repo-commit': repo.commit }, entry);
    }
    m = /^\/cdn-lfs\/([0-9a-f]{64})$/.exec(url.pathname);
    if (m) {
      for (const r of this.repos.values()) {
        const f = r.files.find((x) => x.sha256 === m![1]);
        if (f) return this.send(q, s, f, f.sha256, {}, entry);
      }
    }
    fail(404, 'NotFound', 'not found');
  }

  /** the repository, or an answer as the Hub gives it for a gated or unknown one */
  private access(id: string, q: http.IncomingMessage, fail: (status: number, code: string, message: string) => void) {
    const repo = this.repos.get(id);
    const auth = q.headers.authorization;
    if (!repo) return void (auth ? fail(404, 'RepoNotFound', 'Repository not found') : fail(401, 'RepoNotFound', 'Repository not found'));
    if (repo.gated && auth !== `Bearer ${repo.token}`)
      return void fail(auth ? 403 : 401, 'GatedRepo', `Access to model ${id} is restricted. You must have access to it.`);
    return repo;
  }

  private send(
    q: http.IncomingMessage,
    s: http.ServerResponse,
    f: FileEntry,
    etag: string,
    extra: Record<string, string>,
    entry: Logged,
  ): void {
    let data = f.data;
    if (this.corrupt === f.name) {
      data = Buffer.from(data);
      data[data.length >> 1] ^= 0xff;
    }
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(q.headers.range ?? '');
    const headers: Record<string, string> = { ...extra, etag: `"${etag}"`, 'accept-ranges': 'bytes' };
    if (range) {
      start = Number(range[1]);
      if (start >= data.length) {
        s.writeHead(416, { 'content-range': `bytes */${data.length}` });
        return void s.end();
      }
      headers['content-range'] = `bytes ${start}-${data.length - 1}/${data.length}`;
    }
    headers['content-length'] = String(data.length - start);
    s.writeHead(range ? 206 : 200, headers);
    if (q.method === 'HEAD') return void s.end();
    const body = data.subarray(start);
    const drop = this.dropAfter?.file === f.name ? this.dropAfter.bytes : -1;
    if (drop >= 0) this.dropAfter = null;
    const chunk = this.throttle?.chunk ?? 16384;
    let at = 0;
    const next = () => {
      if (s.destroyed) return;
      if (drop >= 0 && at >= drop) return void s.socket?.destroy(); // the connection drops mid-file
      if (at >= body.length) return void s.end();
      const n = Math.min(chunk, body.length - at, drop >= 0 ? drop - at : Infinity);
      s.write(body.subarray(at, at + n));
      entry.bytes += n;
      at += n;
      if (this.throttle) setTimeout(next, this.throttle.ms);
      else setImmediate(next);
    };
    next();
  }
}
