/** Atomic file and folder writes: write beside the target, then rename over it. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from './errors';

let counter = 0;
function tmpName(target: string): string {
  return `${target}.${process.pid}.${counter++}.tmp`;
}

export function writeFileAtomic(target: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = tmpName(target);
  const fd = fs.openSync(tmp, 'w');
  try {
    if (typeof data === 'string') fs.writeSync(fd, data);
    else fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, target);
}

/**
 * Write a large file in pieces under a temporary name (`fill` writes to the open descriptor) and rename it over
 * `target` once complete; on an error the temporary file is removed and the target is left as it was.
 */
export function writeStreamAtomic(target: string, fill: (fd: number) => void): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = tmpName(target);
  const fd = fs.openSync(tmp, 'w');
  try {
    fill(fd);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, target);
}

export function writeJsonAtomic(target: string, value: unknown): void {
  writeFileAtomic(target, JSON.stringify(value, null, 2) + '\n');
}

/**
 * Build a folder under a temporary name and rename it into place when `fill` succeeds, so a reader never sees
 * half a folder. An existing folder at `target` is replaced only after the new one is complete.
 */
export function writeDirAtomic(target: string, fill: (tmpDir: string) => void): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = tmpName(target);
  fs.mkdirSync(tmp, { recursive: true });
  try {
    fill(tmp);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  if (fs.existsSync(target)) {
    const old = tmpName(target);
    fs.renameSync(target, old);
    fs.renameSync(tmp, target);
    fs.rmSync(old, { recursive: true, force: true });
  } else fs.renameSync(tmp, target);
}

export function readJson(file: string): any {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e: any) {
    throw new UserError(e.code === 'ENOENT' ? 'file not found' : `cannot read (${e.code})`, file);
  }
  try {
    return JSON.parse(text);
  } catch (e: any) {
    throw new UserError(`not valid JSON (${e.message})`, file);
  }
}
