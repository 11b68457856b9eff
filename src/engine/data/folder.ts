/**
 * Walking a folder for training text (the right-click case): honours .gitignore files at every level and the
 * usual build/dependency folders, skips binary, non-UTF-8 and huge files, and says what it skipped and why.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface SkippedFile {
  path: string;
  reason: string;
}

export interface FolderText {
  files: { path: string; text: string }[];
  skipped: SkippedFile[];
}

export const ALWAYS_IGNORED = [
  '.git',
  'node_modules',
  '.lorakit',
  'dist',
  'build',
  'out',
  'target',
  'coverage',
  '__pycache__',
  '.venv',
  'venv',
  '.next',
  '.nuxt',
  '.cache',
  '.gradle',
  '.idea',
  '.vscode-test',
  '.tox',
  '.mypy_cache',
  '.pytest_cache',
  'vendor',
];
const IGNORED_FILES = [/^package-lock\.json$/, /^yarn\.lock$/, /^pnpm-lock\.yaml$/, /\.min\.(js|css)$/, /\.map$/, /^\.DS_Store$/];
const BINARY_EXT =
  /\.(png|jpe?g|gif|bmp|ico|webp|pdf|zip|gz|tgz|bz2|xz|7z|tar|jar|class|exe|dll|so|dylib|o|a|wasm|bin|safetensors|pt|pth|ckpt|gguf|onnx|npy|npz|mp3|mp4|wav|ogg|mov|avi|woff2?|ttf|otf|eot|sqlite|db|parquet|arrow)$/i;

export const MAX_FILE_BYTES = 1 << 20;

interface Rule {
  re: RegExp;
  negate: boolean;
  dirOnly: boolean;
}

/** gitignore pattern → regex over a path relative to the .gitignore's folder */
function compile(line: string): Rule | null {
  let p = line.replace(/\s+$/, '');
  if (!p || p.startsWith('#')) return null;
  let negate = false;
  if (p.startsWith('!')) {
    negate = true;
    p = p.slice(1);
  }
  if (p.startsWith('\\')) p = p.slice(1);
  const dirOnly = p.endsWith('/');
  if (dirOnly) p = p.slice(0, -1);
  const anchored = p.includes('/');
  if (p.startsWith('/')) p = p.slice(1);
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '*' && p[i + 1] === '*') {
      if (p[i + 2] === '/') {
        re += '(?:.*/)?';
        i += 2;
      } else {
        re += '.*';
        i++;
      }
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = p.indexOf(']', i);
      if (end < 0) re += '\\[';
      else {
        re += '[' + p.slice(i + 1, end).replace(/^!/, '^') + ']';
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return { re: new RegExp(anchored ? `^${re}$` : `(?:^|/)${re}$`), negate, dirOnly };
}

function readRules(dir: string): Rule[] {
  const f = path.join(dir, '.gitignore');
  if (!fs.existsSync(f) || !fs.statSync(f).isFile()) return []; // a .gitignore FIFO would block the walk
  return fs
    .readFileSync(f, 'utf8')
    .split(/\r?\n/)
    .map(compile)
    .filter((r): r is Rule => !!r);
}

/** Is `rel` (relative to the rules' folder) ignored? The last matching rule wins. */
function ignored(rules: Rule[], rel: string, isDir: boolean): boolean {
  let out = false;
  for (const r of rules) if ((!r.dirOnly || isDir) && r.re.test(rel)) out = !r.negate;
  return out;
}

/** Decode bytes as UTF-8, or say why they are not text. */
export function asText(buf: Buffer): { text: string } | { reason: string } {
  const head = buf.subarray(0, 8192);
  if (head.includes(0)) return { reason: 'binary (contains NUL bytes)' };
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(buf) };
  } catch {
    return { reason: 'not UTF-8 text' };
  }
}

export function readFolder(root: string, maxBytes = MAX_FILE_BYTES): FolderText {
  const out: FolderText = { files: [], skipped: [] };
  const walk = (dir: string, stack: { base: string; rules: Rule[] }[]) => {
    const here = [...stack, { base: dir, rules: readRules(dir) }];
    const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const full = path.join(dir, e.name);
      const rel = path.relative(root, full);
      const isDir = e.isDirectory();
      if (e.isSymbolicLink()) {
        out.skipped.push({ path: rel, reason: 'symbolic link (not followed)' });
        continue;
      }
      if (isDir && ALWAYS_IGNORED.includes(e.name)) {
        out.skipped.push({ path: rel + '/', reason: 'ignored folder' });
        continue;
      }
      if (here.some((s) => ignored(s.rules, path.relative(s.base, full).split(path.sep).join('/'), isDir))) {
        out.skipped.push({ path: rel + (isDir ? '/' : ''), reason: 'matched .gitignore' });
        continue;
      }
      if (isDir) {
        walk(full, here);
        continue;
      }
      // a FIFO would block the read for ever, a device may never end
      if (!e.isFile()) {
        out.skipped.push({ path: rel, reason: `not a regular file (${nonRegularKind(e)})` });
        continue;
      }
      if (e.name === '.gitignore') continue;
      if (IGNORED_FILES.some((r) => r.test(e.name))) {
        out.skipped.push({ path: rel, reason: 'generated file (lockfile, minified or source map)' });
        continue;
      }
      if (BINARY_EXT.test(e.name)) {
        out.skipped.push({ path: rel, reason: 'binary file type' });
        continue;
      }
      const size = fs.statSync(full).size;
      if (size > maxBytes) {
        out.skipped.push({ path: rel, reason: `too large (${size} bytes > ${maxBytes})` });
        continue;
      }
      if (size === 0) {
        out.skipped.push({ path: rel, reason: 'empty' });
        continue;
      }
      const t = asText(fs.readFileSync(full));
      if ('reason' in t) out.skipped.push({ path: rel, reason: t.reason });
      else out.files.push({ path: rel.split(path.sep).join('/'), text: t.text });
    }
  };
  walk(root, []);
  return out;
}

/** what a FIFO, socket or device is called in messages */
export function nonRegularKind(st: {
  isFIFO(): boolean;
  isSocket(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
}): string {
  return st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : 'unknown type';
}

/** "12 skipped: 7 matched .gitignore, 3 binary file type, 2 too large" */
export function summarizeSkipped(skipped: SkippedFile[]): string {
  if (skipped.length === 0) return 'none skipped';
  const by = new Map<string, number>();
  for (const s of skipped) {
    const key = s.reason.replace(/ \(.*\)$/, '');
    by.set(key, (by.get(key) ?? 0) + 1);
  }
  return `${skipped.length} skipped: ${[...by].map(([r, n]) => `${n} ${r}`).join(', ')}`;
}
