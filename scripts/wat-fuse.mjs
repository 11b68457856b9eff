// The FMA variant of a .wat fragment, by a walk over its s-expressions (wat.mjs assembles both variants): a folded
// `(f32x4.add X (f32x4.mul A B))` or `(f32x4.add (f32x4.mul A B) X)` becomes `(f32x4.relaxed_madd A B X)`, and
// `(f32x4.sub X (f32x4.mul A B))` becomes `(f32x4.relaxed_nmadd A B X)` (−(A·B) + X: the same value, one rounding
// or two). `(f32x4.sub (f32x4.mul A B) X)` stays as it is. Operands keep their order of evaluation, or move only
// where nothing on either side writes what the other reads (locals, memory) or leaves the block. Every line keeps
// its number, so a syntax error in the FMA module points at the fragment's own line.

/** A fragment as a forest: lists `{ start, end, items }` and atoms `{ start, end, text }` (comments skipped). */
export function parseSexps(src) {
  const top = { start: 0, end: src.length, items: [] };
  const stack = [top];
  let i = 0;
  while (i < src.length) {
    const ch = src[i];
    if (ch === ';' && src[i + 1] === ';') {
      const nl = src.indexOf('\n', i);
      i = nl < 0 ? src.length : nl;
    } else if (ch === '(' && src[i + 1] === ';') {
      let depth = 0;
      do {
        if (src.startsWith('(;', i)) {
          depth++;
          i += 2;
        } else if (src.startsWith(';)', i)) {
          depth--;
          i += 2;
        } else if (i >= src.length) throw new Error(`unclosed block comment at offset ${i}`);
        else i++;
      } while (depth > 0);
    } else if (ch === '(') {
      const node = { start: i, end: -1, items: [] };
      stack[stack.length - 1].items.push(node);
      stack.push(node);
      i++;
    } else if (ch === ')') {
      if (stack.length === 1) throw new Error(`unbalanced ")" at line ${lineAt(src, i)}`);
      stack.pop().end = ++i;
    } else if (/\s/.test(ch)) i++;
    else {
      const start = i;
      if (ch === '"') {
        for (i++; i < src.length && src[i] !== '"'; i++) if (src[i] === '\\') i++;
        i++;
      } else while (i < src.length && !/[\s()";]/.test(src[i])) i++;
      stack[stack.length - 1].items.push({ start, end: i, text: src.slice(start, i) });
    }
  }
  if (stack.length > 1) throw new Error(`unclosed "(" at line ${lineAt(src, stack[stack.length - 1].start)}`);
  return top.items;
}

const lineAt = (src, i) => src.slice(0, i).split('\n').length;
const head = (n) => (n.items && n.items[0] && n.items[0].text) || '';
const isList = (n) => !!n.items;
/** a folded binary instruction: (op (…) (…)) */
const binary = (n, op) => isList(n) && head(n) === op && n.items.length === 3 && isList(n.items[1]) && isList(n.items[2]);

/** what an expression reads and writes: locals by name, memory as one, `all` for calls out of the block */
function effects(n, e = { reads: new Set(), writes: new Set(), all: false }) {
  if (!isList(n)) return e;
  const op = head(n);
  const arg = n.items[1] && n.items[1].text;
  if (op === 'local.get') e.reads.add(`local ${arg}`);
  else if (op === 'local.set' || op === 'local.tee') e.writes.add(`local ${arg}`);
  else if (op === 'global.get') e.reads.add(`global ${arg}`);
  else if (op === 'global.set') e.writes.add(`global ${arg}`);
  else if (/\.(load|store)|^memory\.|\.atomic\.|^table\.|^data\.drop|^elem\.drop/.test(op))
    (/store|^memory\.(grow|fill|copy|init)|\.atomic\.|^table\.(set|grow|fill|copy|init)/.test(op) ? e.writes : e.reads).add('memory');
  else if (op === 'call' || op === 'call_indirect') {
    e.writes.add('memory');
    e.reads.add('memory');
  } else if (/^(br|br_if|br_table|return|return_call.*|unreachable|throw|rethrow)$/.test(op)) e.all = true;
  for (const c of n.items.slice(1)) effects(c, e);
  return e;
}

/** may `first` and `second` be evaluated in the other order with the same result? */
function commute(first, second) {
  const a = effects(first);
  const b = effects(second);
  if (a.all || b.all) return false;
  for (const w of a.writes) if (b.reads.has(w) || b.writes.has(w)) return false;
  for (const w of b.writes) if (a.reads.has(w)) return false;
  return true;
}

/**
 * The fused form of a fragment: `{ text, madd, nmadd, kept }`, with `kept` counting the mul-adds left unfused because
 * their operands may not move.
 */
export function fuseMulAdds(src) {
  const counts = { madd: 0, nmadd: 0, kept: 0 };
  const newlines = (s) => s.split('\n').length - 1;
  const slice = (n) => src.slice(n.start, n.end);
  const render = (n) => {
    if (!isList(n)) return n.text;
    const f = match(n);
    if (f) {
      const parts = f.args.map(render);
      counts[f.op]++;
      const lost = newlines(slice(n)) - f.args.reduce((s, a) => s + newlines(slice(a)), 0);
      return `(f32x4.relaxed_${f.op} ${parts.join(' ')}${'\n'.repeat(lost)})`;
    }
    let out = '';
    let at = n.start;
    for (const c of n.items) {
      out += src.slice(at, c.start) + render(c);
      at = c.end;
    }
    return out + src.slice(at, n.end);
  };
  const match = (n) => {
    const [, x, y] = n.items;
    if (binary(n, 'f32x4.add')) {
      // (add (mul A B) X): A, B, X in the original order
      if (binary(x, 'f32x4.mul')) return { op: 'madd', args: [x.items[1], x.items[2], y] };
      if (binary(y, 'f32x4.mul')) {
        if (commute(x, y)) return { op: 'madd', args: [y.items[1], y.items[2], x] };
        counts.kept++;
      }
    } else if (binary(n, 'f32x4.sub') && binary(y, 'f32x4.mul')) {
      if (commute(x, y)) return { op: 'nmadd', args: [y.items[1], y.items[2], x] };
      counts.kept++;
    }
    return null;
  };
  let text = '';
  let at = 0;
  for (const n of parseSexps(src)) {
    text += src.slice(at, n.start) + render(n);
    at = n.end;
  }
  return { text: text + src.slice(at), ...counts };
}

/** does some loop of the fragment both multiply and add f32x4 (then its FMA variant should fuse something)? */
export function hasLoopMulAdds(src) {
  const ops = (n, s = new Set()) => {
    if (isList(n)) for (const c of n.items) ops(c, s);
    else s.add(n.text);
    return s;
  };
  const loops = (n) => (!isList(n) ? [] : head(n) === 'loop' ? [n] : n.items.flatMap(loops));
  return parseSexps(src)
    .flatMap(loops)
    .some((l) => {
      const s = ops(l);
      return s.has('f32x4.mul') && (s.has('f32x4.add') || s.has('f32x4.sub'));
    });
}
