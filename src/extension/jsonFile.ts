/** Small file helpers for the extension (the engine's own live in src/engine; the extension does not import it). */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Write JSON so that a reader never sees half a file: a temporary file beside it, then a rename. */
export function writeJsonAtomic(target: string, value: unknown): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = `${target}.${process.pid}.${Date.now()}.tmp`;
  try {
    fs.writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
    fs.renameSync(tmp, target);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}
