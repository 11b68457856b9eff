/**
 * Inline completions without VS Code: the text around the cursor (bounded in characters), where a completion
 * should end, the trimming that makes it end there, the wait before asking (a newer keystroke cancels it) and the
 * status-bar text. completions.ts puts them behind VS Code's provider; the tests call them directly.
 */
import type { Params, Result } from '../protocol';

/** characters of the document sent before and after the cursor */
export const PREFIX_CHARS = 6000;
export const SUFFIX_CHARS = 2000;

export interface InlineSettings {
  enabled: boolean;
  maxTokens: number;
  debounceMs: number;
  /** language ids to complete in; empty or "*": all */
  languages: string[];
}

/**
 * The text before and after the cursor, at most `maxPrefix` and `maxSuffix` characters. A cut side loses its
 * partial line at the cut (the model sees whole lines), unless the bound is shorter than that line.
 */
export function around(
  text: string,
  offset: number,
  maxPrefix = PREFIX_CHARS,
  maxSuffix = SUFFIX_CHARS,
): { prefix: string; suffix: string } {
  let prefix = text.slice(Math.max(0, offset - maxPrefix), offset);
  if (offset > maxPrefix) {
    const nl = prefix.indexOf('\n');
    if (nl >= 0 && nl < prefix.length - 1) prefix = prefix.slice(nl + 1);
  }
  let suffix = text.slice(offset, offset + maxSuffix);
  if (offset + maxSuffix < text.length) {
    const nl = suffix.lastIndexOf('\n');
    if (nl > 0) suffix = suffix.slice(0, nl + 1);
  }
  return { prefix, suffix };
}

/**
 * How a completion at the cursor ends: at the end of the line when the line has text after the cursor or the
 * completion starts mid-line; otherwise at the end of the block: a blank line, or a line indented less than the
 * cursor's line.
 */
export type Shape = { kind: 'line' } | { kind: 'block'; indent: number };

export function shapeAt(lineBefore: string, lineAfter: string): Shape {
  if (lineBefore.trim() || lineAfter.trim()) return { kind: 'line' };
  return { kind: 'block', indent: lineBefore.length };
}

/** the stop sequences the sidecar ends at (the dedent is trimmed here: a stop sequence cannot say it) */
export const stopsFor = (s: Shape): string[] => (s.kind === 'line' ? ['\n'] : ['\n\n']);

const indentOf = (line: string) => line.length - line.trimStart().length;

/** The completion cut to its shape, without trailing blanks, and without repeating the rest of the line. */
export function trimCompletion(text: string, shape: Shape, lineAfter = ''): string {
  if (shape.kind === 'line') {
    let t = text.split('\n')[0].trimEnd();
    const rest = lineAfter.trim();
    if (rest && t.endsWith(rest)) t = t.slice(0, t.length - rest.length).trimEnd();
    return t;
  }
  const lines = text.split('\n');
  let n = 1;
  while (n < lines.length && lines[n].trim() && indentOf(lines[n]) >= shape.indent) n++;
  return lines.slice(0, n).join('\n').trimEnd();
}

export const languageOn = (languages: readonly string[], id: string): boolean =>
  languages.length === 0 || languages.includes('*') || languages.includes(id);

/** Wait `ms` unless the signal aborts first: true when the wait ran out (a newer keystroke aborts it). */
export function settle(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', abort);
      resolve(ok);
    };
    const abort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal.addEventListener('abort', abort, { once: true });
  });
}

export type Complete = (p: Params<'complete'>, signal: AbortSignal) => Promise<Result<'complete'>>;

/**
 * The completion at `offset` in `text`, or null: after the debounce, one `complete` request with the prefix and
 * the suffix (the sidecar fills in the middle where the tokenizer can, and heals the token cut at the cursor), cut
 * to the shape at the cursor. An abort
 * (the keystroke after) ends the wait or the request; its partial text is not shown.
 */
export async function completeAt(
  doc: { text: string; offset: number },
  s: Pick<InlineSettings, 'maxTokens' | 'debounceMs'>,
  target: { model: string; adapter: string },
  complete: Complete,
  signal: AbortSignal,
): Promise<string | null> {
  if (!(await settle(s.debounceMs, signal))) return null;
  const { prefix, suffix } = around(doc.text, doc.offset);
  if (!prefix.trim()) return null;
  const lineBefore = prefix.slice(prefix.lastIndexOf('\n') + 1);
  const lineAfter = suffix.split('\n')[0].replace(/\r$/, '');
  const shape = shapeAt(lineBefore, lineAfter);
  const r = await complete(
    {
      model: target.model,
      adapter: target.adapter,
      prompt: prefix,
      suffix,
      maxTokens: s.maxTokens,
      temperature: 0,
      stop: stopsFor(shape),
      heal: true,
    },
    signal,
  );
  if (r.finishReason === 'cancelled' || signal.aborted) return null;
  const t = trimCompletion(r.text, shape, lineAfter);
  return t.trim() ? t : null;
}

/** The completions' status-bar item: the active adapter (or "base"), on or off, and what is missing if anything. */
export function completionStatus(s: { adapter: string | null; enabled: boolean; hint: string | null }): { text: string; tooltip: string } {
  const name = s.adapter ?? 'base';
  const short = name.length > 28 ? `${name.slice(0, 27)}…` : name;
  const icon = !s.enabled ? '$(circle-slash)' : s.hint ? '$(warning)' : '$(sparkle)';
  const state = s.enabled ? 'on' : 'off';
  const tooltip = [
    `lorakit completions: ${state}, ${s.adapter ? `from the adapter “${s.adapter}”` : 'no active adapter'}`,
    s.enabled && s.hint ? s.hint : '',
    `click to turn completions ${s.enabled ? 'off' : 'on'}`,
  ]
    .filter(Boolean)
    .join('\n');
  return { text: `${icon} ${short} · ${state}`, tooltip };
}
