/**
 * Atomic file and folder writes (write beside the target, then rename over it), write errors a user can act on
 * (a full disk, a read-only folder: one line naming the file and what was kept), and the real-path test that keeps
 * outputs out of input folders.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from './errors';

let counter = 0;
function tmpName(target: string): string {
  return `${target}.${process.pid}.${counter++}.tmp`;
}

/** a temporary name made by tmpName (a `name.PID.N.tmp` file or folder left by a process that was killed) */
export const TMP_RE = /\.(\d+)\.\d+\.tmp$/;

/** error codes of a write that the user can fix: the disk, the folder's permissions, a read-only file system */
const WRITE_CODES: Record<string, string> = {
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is exceeded',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied (the folder is read-only?)',
  EPERM: 'not permitted (the folder is read-only or immutable?)',
};

/**
 * Turn a failed write into one line: the file, why (the disk is full, the folder is read-only), and what was kept
 * (`kept`: what the caller leaves intact). Other errors pass through unchanged.
 */
export function writeError(e: unknown, file: string, kept?: string): unknown {
  let code = (e as NodeJS.ErrnoException)?.code;
  // mkdir -p on a read-only file system reports ENOENT: ask the nearest existing folder why
  if (code === 'ENOENT') code = unwritableAncestor(file) ?? code;
  const why = code && WRITE_CODES[code];
  if (!why) return e;
  return new UserError(`cannot write: ${why} (${code})${kept ? `; ${kept}` : ''}`, file);
}

/** the error code that keeps the nearest existing folder above `file` from being written, if any */
function unwritableAncestor(file: string): string | undefined {
  let dir = path.resolve(file);
  while (!fs.existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return undefined;
  } catch (caught) {
    const e = caught as NodeJS.ErrnoException;
    return (e as NodeJS.ErrnoException).code;
  }
}

/** run `write`, reporting a full disk or a read-only folder as a UserError naming `file` */
export function writing<T>(file: string, write: () => T, kept?: string): T {
  try {
    return write();
  } catch (caught) {
    const e = caught as NodeJS.ErrnoException;
    throw writeError(e, file, kept);
  }
}

export function writeFileAtomic(target: string, data: string | Uint8Array, kept = 'the previous file, if any, is unchanged'): void {
  writeStreamAtomic(
    target,
    (fd) => {
      if (typeof data === 'string') fs.writeSync(fd, data);
      else fs.writeSync(fd, data);
    },
    kept,
  );
}

/**
 * Write a large file in pieces under a temporary name (`fill` writes to the open descriptor) and rename it over
 * `target` once complete; on an error the temporary file is removed and the target is left as it was.
 */
export function writeStreamAtomic(target: string, fill: (fd: number) => void, kept = 'the previous file, if any, is unchanged'): void {
  const tmp = tmpName(target);
  try {
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const fd = fs.openSync(tmp, 'w');
    try {
      fill(fd);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, target);
  } catch (caught) {
    const e = caught as NodeJS.ErrnoException;
    fs.rmSync(tmp, { force: true });
    throw writeError(e, target, kept);
  }
}

export function writeJsonAtomic(target: string, value: unknown, kept?: string): void {
  writeFileAtomic(target, JSON.stringify(value, null, 2) + '\n', kept);
}

/**
 * Build a folder under a temporary name and rename it into place when `fill` succeeds, so a reader never sees
 * half a folder. An existing folder at `target` is replaced only after the new one is complete. A full disk or a
 * read-only folder removes the partial copy and is reported naming the target (`kept`: what is left intact).
 */
export function writeDirAtomic(target: string, fill: (tmpDir: string) => void, kept = 'nothing was written'): void {
  const tmp = tmpName(target);
  try {
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.mkdirSync(tmp, { recursive: true });
    fill(tmp);
    if (fs.existsSync(target)) {
      const old = tmpName(target);
      fs.renameSync(target, old);
      fs.renameSync(tmp, target);
      fs.rmSync(old, { recursive: true, force: true });
    } else fs.renameSync(tmp, target);
  } catch (caught) {
    const e = caught as NodeJS.ErrnoException;
    try {
      fs.rmSync(tmp, { recursive: true, force: true });
    } catch {
      // a read-only folder may refuse the clean-up too; the error below is the one to report
    }
    throw writeError(e, target, kept);
  }
}

/** Remove `name.PID.N.tmp` entries of `dir` left by processes that are gone (a kill during a write); returns them. */
export function removeStaleTmp(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const removed: string[] = [];
  for (const name of fs.readdirSync(dir)) {
    const m = TMP_RE.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    fs.rmSync(path.join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (caught) {
    const e = caught as NodeJS.ErrnoException;
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The real path of `p` even when it does not exist yet: the real path of its nearest existing ancestor, with the
 * rest appended. Symlinks anywhere on the way are resolved, so two spellings of one folder compare equal.
 */
export function realPathOf(p: string): string {
  let dir = path.resolve(p);
  const rest: string[] = [];
  for (;;) {
    try {
      return path.join(fs.realpathSync(dir), ...rest);
    } catch {
      const up = path.dirname(dir);
      if (up === dir) return path.join(dir, ...rest);
      rest.unshift(path.basename(dir));
      dir = up;
    }
  }
}

/** Is `inner` the folder `outer` or inside it, comparing real paths? */
export function isInside(inner: string, outer: string): boolean {
  const a = realPathOf(inner),
    b = realPathOf(outer);
  return a === b || a.startsWith(b.endsWith(path.sep) ? b : b + path.sep);
}

export function readJson(file: string): any {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (caught) {
    const e = caught as NodeJS.ErrnoException;
    throw new UserError(
      e.code === 'ENOENT'
        ? 'file not found'
        : e.code === 'ENOTDIR'
          ? 'not found (a parent is a file, not a folder)'
          : `cannot read (${e.code})`,
      file,
    );
  }
  try {
    return JSON.parse(text);
  } catch (caught) {
    const e = caught as NodeJS.ErrnoException;
    throw new UserError(`not valid JSON (${e.message})`, file);
  }
}
