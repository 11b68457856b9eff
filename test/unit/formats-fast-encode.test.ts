// The fast encode (formats/fast-encode.ts) against @huggingface/tokenizers' own encode: the same ids, token for
// token, on generated code (unicode, whitespace runs, long lines, CRLF, special tokens written in the text) and on
// fast-check's strings, for the GPT-2, Qwen2 and Llama 3 layouts of byte-level BPE, with BOS and without, with
// added tokens that strip, that are normalized and that are not special; and the shapes it leaves to the library.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { TextTokenizer } from '../../src/engine/formats/tokenizer';
import { FastEncoder } from '../../src/engine/formats/fast-encode';
import { TokenizerStyle, makeTokenizer } from '../../src/engine/fixtures/bpe';
import { codeText } from '../../src/engine/fixtures/code';

const SEED = 20261207;
const corpus = codeText(24_000, 7);

/**
 * A tokenizer of this layout; with `extra`, added tokens that strip, are normalized, are not special, start with
 * another added token, or normalize to a word of the BPE vocabulary (whose id the library then takes from the added
 * token), and for GPT-2 a ByteLevel that adds a prefix space (RoBERTa's).
 */
function tokenizer(style: TokenizerStyle, bos: boolean, extra = false): TextTokenizer {
  const f = makeTokenizer(corpus, 640, bos, style);
  const json = f.tokenizerJson as { added_tokens: object[]; pre_tokenizer: { add_prefix_space?: boolean } };
  if (extra) {
    let id = f.vocabSize;
    const add = (content: string, o: object) => json.added_tokens.push({ id: id++, content, single_word: false, ...o });
    add('<tool_call>', { lstrip: false, rstrip: true, normalized: false, special: false });
    add(' <mask>', { lstrip: true, rstrip: false, normalized: false, special: true });
    add('Cafe\u0301', { lstrip: false, rstrip: false, normalized: true, special: false }); // NFC makes it "Café"
    add('<|fim|>', { lstrip: true, rstrip: true, special: false }); // normalized by default (not special)
    add('value', { lstrip: false, rstrip: false, normalized: false, special: true }); // a word the BPE also knows
    add('<|im_start|>system', { special: true, normalized: false }); // the longest added token wins
    add('G\u0307total', { special: false, normalized: true }); // NFC: "Ġtotal", the BPE's token for " total"
    if (style === 'gpt2') json.pre_tokenizer.add_prefix_space = true;
  }
  const t = new TextTokenizer('/nowhere', json, f.tokenizerConfig);
  assert.ok(t.fastPath, `${style}: the fast path applies`);
  return t;
}

const LAYOUTS: [TokenizerStyle, boolean, boolean][] = [
  ['gpt2', false, false],
  ['gpt2', true, true],
  ['qwen2', false, false],
  ['qwen2', false, true],
  ['llama3', true, false],
  ['llama3', true, true],
];
const toks = LAYOUTS.map(([style, bos, extra]) => ({
  name: `${style}${bos ? '+bos' : ''}${extra ? '+added' : ''}`,
  t: tokenizer(style, bos, extra),
}));

function same(t: TextTokenizer, text: string, what: string): void {
  for (const add of [true, false]) {
    const want = t.encodeReference(text, add);
    const got = t.encode(text, add);
    if (got.length === want.length && got.every((x, i) => x === want[i])) continue;
    const at = got.findIndex((x, i) => x !== want[i]);
    assert.fail(
      `${what} (addSpecial ${add}): first difference at token ${at}: got ${got.slice(at, at + 5)}, want ${want.slice(at, at + 5)}`,
    );
  }
}

const NASTY = [
  '',
  ' ',
  '\n',
  '\r\n\r\n',
  '   \n\t\t  x',
  'a  ',
  '  \u00a0\u3000 ',
  '<|im_start|>user\nhi<|im_end|>\n',
  '<|endoftext|><|endoftext|>',
  '<|im_start',
  '<|im_start|>system\n<|im_start|>sys',
  ' total = Gtotal + G\u0307total',
  'x <mask> y <tool_call>  z <|fim|> w',
  'Cafe\u0301 Café value values',
  "it's they'RE we'Ve I'M",
  '123456789 1.5e-10 0x1F',
  '\ud83d', // a lone surrogate
  '\udc00\ud83d\ude42',
  'e\u0301\u0301 ﬁ Å Å',
  '日本語のテキスト 中文 🙂🚀✨ 𝔘𝔫𝔦',
  ' '.repeat(300) + 'x' + '\t'.repeat(50),
  'w'.repeat(5000),
  'ab'.repeat(3000),
];

test('generated code: the same ids as @huggingface/tokenizers, for every layout', () => {
  for (const { name, t } of toks) {
    for (const s of NASTY) same(t, s, `${name}: ${JSON.stringify(s.slice(0, 30))}`);
    for (let seed = 0; seed < 6; seed++) same(t, codeText(6000 + seed * 3000, seed), `${name}: codeText seed ${seed}`);
  }
});

test('the word cache changes nothing: a tiny cache that turns over constantly gives the same ids', () => {
  const keep = FastEncoder.cacheWords;
  FastEncoder.cacheWords = 7;
  try {
    for (const { name, t } of toks) same(t, codeText(20_000, 11), `${name} (cache of 7 words)`);
  } finally {
    FastEncoder.cacheWords = keep;
  }
});

test('property: any string encodes to the same ids on both paths', () => {
  const pieces = fc.constantFrom(
    '<|endoftext|>',
    '<|im_start|>',
    '<|im_end|>',
    '<|begin_of_text|>',
    ' <mask>',
    '<tool_call>',
    '<|fim|>',
    'Cafe\u0301',
    'value',
    ' value',
    '<|im_start|>system',
    'G\u0307total',
    ' ',
    '  ',
    '\n',
    '\r\n',
    '\t',
    '\u00a0',
    "'s",
    "'LL",
    'const',
    ' total',
    '42',
    '🙂',
    'é',
    'e\u0301',
  );
  const unit = fc.oneof(
    { weight: 3, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 12 }) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }) }, // any code point, lone surrogates included
    { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom('\ud800', '\udfff', '\u0301', '\u200d', '\ufeff'), maxLength: 3 }) },
    { weight: 3, arbitrary: pieces },
  );
  const text = fc.array(unit, { maxLength: 24 }).map((xs) => xs.join(''));
  fc.assert(
    fc.property(text, fc.nat(toks.length - 1), (s, i) => same(toks[i].t, s, toks[i].name)),
    { seed: SEED, numRuns: 1500 },
  );
});

test('Split steps of every kind before ByteLevel: inverted, with gaps and empty matches, removed, a string pattern', () => {
  const f = makeTokenizer(corpus, 500, true, 'llama3');
  const splits = [
    { pattern: { Regex: '\\p{L}*|\\p{N}' }, behavior: 'Isolated', invert: true }, // the (non-empty) matches, the rest dropped
    { pattern: { Regex: '\\d*' }, behavior: 'Isolated', invert: false }, // empty matches everywhere, text between
    { pattern: { Regex: '\\D|\\d*' }, behavior: 'Isolated', invert: false }, // matches that tile the text, an empty one at the end
    { pattern: { Regex: '\\s+' }, behavior: 'MergedWithPrevious', invert: false }, // the library splits it as Isolated
    { pattern: { String: ' ' }, behavior: 'Removed', invert: false }, // left to the library's own step
    { pattern: { String: '  ' }, behavior: 'Isolated', invert: false },
  ];
  for (const split of splits)
    for (const [useRegex, prefix] of [
      [false, false],
      [true, false],
      [false, true],
    ]) {
      const j = structuredClone(f.tokenizerJson) as Record<string, any>;
      j.pre_tokenizer = {
        type: 'Sequence',
        pretokenizers: [
          { type: 'Split', ...split },
          { type: 'ByteLevel', add_prefix_space: prefix, trim_offsets: true, use_regex: useRegex },
        ],
      };
      const t = new TextTokenizer('/nowhere', j, f.tokenizerConfig);
      const what = `${JSON.stringify(split)}, ByteLevel use_regex ${useRegex} add_prefix_space ${prefix}`;
      assert.ok(t.fastPath, what);
      for (const s of NASTY) same(t, s, `${what}: ${JSON.stringify(s.slice(0, 30))}`);
      same(t, codeText(8000, 21), `${what}: codeText`);
    }
});

test('other tokenizer layouts are left to the library, which still encodes them', () => {
  const f = makeTokenizer(corpus, 400, false);
  const json = f.tokenizerJson as Record<string, any>;
  const variants: [string, (j: Record<string, any>) => void][] = [
    ['no pre-tokenizer', (j) => (j.pre_tokenizer = null)],
    [
      'a Metaspace pre-tokenizer',
      (j) => (j.pre_tokenizer = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true }),
    ],
    ['fuse_unk', (j) => (j.model = { ...j.model, fuse_unk: true, unk_token: '<|endoftext|>' })],
    [
      'a ByteLevel that is not last',
      (j) => (j.pre_tokenizer = { type: 'Sequence', pretokenizers: [j.pre_tokenizer, { type: 'Digits', individual_digits: true }] }),
    ],
  ];
  for (const [what, change] of variants) {
    const j = structuredClone(json);
    change(j);
    const t = new TextTokenizer('/nowhere', j, f.tokenizerConfig);
    assert.equal(t.fastPath, false, what);
    const text = 'const x = 12345; // done';
    assert.deepEqual(t.encode(text), t.encodeReference(text), what);
  }
  const remove = new TextTokenizer('/nowhere', json, { ...f.tokenizerConfig, remove_space: true });
  assert.equal(remove.fastPath, false, 'remove_space');
});
