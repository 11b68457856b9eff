/** Where the worker bundles are: beside the running bundle (dist/), or in the dist/ of a folder above it (tests). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from './errors';

export function bundleFile(name: string): string {
  if (fs.existsSync(path.join(__dirname, name))) return path.join(__dirname, name);
  for (let dir = __dirname; path.dirname(dir) !== dir; dir = path.dirname(dir)) {
    const p = path.join(dir, 'dist', name);
    if (fs.existsSync(p)) return p;
  }
  throw new UserError(`${name} is missing beside ${__dirname}: run npm run build`);
}
