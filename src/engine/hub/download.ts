/**
 * One file from the Hub into blobs/<etag>, as huggingface_hub does it: the bytes go to blobs/<etag>.incomplete,
 * a dropped connection or a cancel keeps that file and the next try asks for the rest with a Range request, and
 * only a whole file whose hash matches its etag (sha256 for LFS files, the git blob sha1 otherwise) is renamed to
 * its name. A half-downloaded file is therefore never taken for a whole one.
 */
import { createHash, Hash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CancelledError, UserError } from '../core/errors';
import { formatBytes } from '../core/format';
import { FileMeta, HubClient } from './http';

export interface DownloadOptions {
  signal?: AbortSignal;
  /** bytes received since the last call */
  onBytes?: (n: number) => void;
  /** tries after a dropped connection, each resuming where the last stopped (default 5) */
  retries?: number;
}

/** the hash an etag names: sha256 (64 hex digits, an LFS file), git's blob sha1 (40), or none we can check */
function hasherFor(etag: string, size: number): Hash | null {
  if (/^[0-9a-f]{64}$/.test(etag)) return createHash('sha256');
  if (/^[0-9a-f]{40}$/.test(etag) && size >= 0) return createHash('sha1').update(`blob ${size}\0`);
  return null;
}

/** Download `meta` to `blob` (its final name); returns the bytes fetched over the network. */
export async function downloadBlob(
  client: HubClient,
  repo: string,
  file: string,
  meta: FileMeta,
  blob: string,
  o: DownloadOptions = {},
): Promise<number> {
  const part = `${blob}.incomplete`;
  fs.mkdirSync(path.dirname(blob), { recursive: true });
  let fetched = 0;
  const tries = (o.retries ?? 5) + 1;
  for (let attempt = 1; ; attempt++) {
    if (o.signal?.aborted) throw new CancelledError(`download of ${file} cancelled; the partial file is kept for the next pull`);
    const start = fs.existsSync(part) ? fs.statSync(part).size : 0;
    try {
      fetched += await fetchInto(client, repo, meta, part, start, o);
      break;
    } catch (e) {
      if (e instanceof UserError) throw e;
      if ((e as Error).name === 'AbortError' || o.signal?.aborted)
        throw new CancelledError(`download of ${file} cancelled; the partial file is kept for the next pull`);
      if (attempt >= tries)
        throw new UserError(
          `the connection dropped ${tries} times (${describe(e)}); ${formatBytes(fs.statSync(part).size)} kept: run the pull again to resume`,
          meta.url,
        );
      await new Promise((r) => setTimeout(r, Math.min(200 * attempt, 2000)));
    }
  }
  await verify(part, meta, file);
  fs.renameSync(part, blob);
  return fetched;
}

async function fetchInto(
  client: HubClient,
  repo: string,
  meta: FileMeta,
  part: string,
  start: number,
  o: DownloadOptions,
): Promise<number> {
  if (meta.size >= 0 && start === meta.size) return 0; // all there from an earlier try: verify it
  if (meta.size >= 0 && start > meta.size) fs.rmSync(part); // longer than the file: not ours
  const from = fs.existsSync(part) ? start : 0;
  const r = await client.get(meta.url, repo, from, o.signal);
  if (r.status === 416) {
    fs.rmSync(part, { force: true });
    throw new Error('range not satisfiable'); // start again from 0
  }
  let append = r.status === 206 && from > 0;
  if (append) {
    const m = /^bytes (\d+)-/.exec(r.headers.get('content-range') ?? '');
    if (!m || Number(m[1]) !== from) append = false; // not the part asked for: start over
  }
  if (!append && r.status === 206) {
    await r.body?.cancel();
    fs.rmSync(part, { force: true });
    throw new Error('the server sent another range than asked');
  }
  const fh = await fs.promises.open(part, append ? 'a' : 'w');
  let n = 0;
  try {
    if (!r.body) throw new Error('empty response');
    for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
      try {
        await fh.write(chunk);
      } catch (e) {
        throw diskError(e, part);
      }
      n += chunk.length;
      o.onBytes?.(chunk.length);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return n;
}

/** size and hash against the etag; a mismatch removes the partial file (it cannot be resumed into a right one) */
async function verify(part: string, meta: FileMeta, file: string): Promise<void> {
  const size = fs.statSync(part).size;
  if (meta.size >= 0 && size !== meta.size) {
    fs.rmSync(part);
    throw new UserError(`${file}: got ${size} bytes, the Hub said ${meta.size}; the partial file was removed, pull again`, meta.url);
  }
  const h = hasherFor(meta.etag, size);
  if (!h) return;
  for await (const chunk of fs.createReadStream(part)) h.update(chunk as Buffer);
  const got = h.digest('hex');
  if (got !== meta.etag) {
    fs.rmSync(part);
    throw new UserError(
      `${file}: wrong checksum (expected ${meta.etag}, got ${got}): the download was corrupted and removed; pull again`,
      meta.url,
    );
  }
}

function diskError(e: unknown, file: string): Error {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT')
    return new UserError('the disk is full; free some space (the partial file is kept, pull again to resume)', file);
  return new UserError(`cannot write (${code ?? (e as Error).message})`, file);
}

function describe(e: unknown): string {
  const c = (e as { cause?: { code?: string; message?: string } }).cause;
  return c?.code ?? c?.message ?? (e as Error).message;
}
