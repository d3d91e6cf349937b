// Writes the tokenizer parity fixtures in this folder (run once, by hand; the outputs are
// committed):  NODE_PATH=~/.cache/moekit-npm/node_modules node make_fixtures.js
// Texts: base_texts.json expanded by fixed rules and a seeded generator into texts.jsonl and
// pairs.jsonl. Vocabularies are built here from those texts by simple procedures (no trained
// model is downloaded): WordPiece = characters + frequent words + frequent word endings; byte-level
// BPE = the classic merge-the-most-frequent-pair training on GPT-2's byte alphabet; Unigram =
// frequent substrings scored by log frequency. The Precompiled charsmap is built here too: a
// darts-clone double-array trie (the layout SentencePiece writes) mapping each character whose NFKC
// form differs, a few combining sequences and some removals. The `tokenizers` package is used only
// to pre-tokenize the training texts.
'use strict';
const fs = require('fs');
const path = require('path');
const tk = require('tokenizers');

const here = __dirname;
const base = JSON.parse(fs.readFileSync(path.join(here, 'base_texts.json'), 'utf8'));

let seed = 12345;
function rand(n) {  // LCG, deterministic
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed % n;
}

// ---- texts ----
const texts = [];
for (const t of base) texts.push(t);
for (const t of base) texts.push(t.toLowerCase());
for (const t of base) texts.push(t.toUpperCase());
for (const t of base) texts.push(t.replace(/ /g, '  ').replace(/,/g, ' , '));
const seps = [' ', '  ', '\t', '', ' \u00a0 ', '\n', '   '];
for (let i = 0; i < 60; ++i) {
  const parts = [];
  for (let k = 0; k < 1 + rand(3); ++k) parts.push(base[rand(base.length)]);
  texts.push(parts.join(seps[rand(seps.length)]));
}
texts.push('x'.repeat(150), 'ab'.repeat(120), 'é'.repeat(60), '中'.repeat(40), 'long' + 'word'.repeat(40));
texts.push('');
fs.writeFileSync(path.join(here, 'texts.jsonl'), texts.map((t) => JSON.stringify({ text: t })).join('\n') + '\n');
const pairs = [];
for (let i = 0; i < 120; ++i) pairs.push({ text: texts[rand(texts.length)], text_pair: texts[rand(texts.length)] });
fs.writeFileSync(path.join(here, 'pairs.jsonl'), pairs.map((p) => JSON.stringify(p)).join('\n') + '\n');

function count(words) {
  const m = new Map();
  for (const w of words) m.set(w, (m.get(w) || 0) + 1);
  return m;
}
function pretok(pre, s) {
  return pre.preTokenizeString(s).map((x) => x[0]);
}
const emoji = /\p{Extended_Pictographic}/u;  // left out of the vocabularies so unknowns occur

// ---- WordPiece ----
{
  const norm = tk.bertNormalizer({ lowercase: true });
  const pre = tk.bertPreTokenizer();
  const words = [];
  for (const t of texts) words.push(...pretok(pre, norm.normalizeString(t)));
  const freq = count(words);
  const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
  const seen = new Set(vocab);
  const add = (t) => { if (!seen.has(t)) { seen.add(t); vocab.push(t); } };
  const chars = new Set();
  for (const w of freq.keys()) for (const c of w) if (!emoji.test(c)) chars.add(c);
  for (const c of [...chars].sort()) { add(c); add('##' + c); }
  const byFreq = [...freq.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  for (const [w] of byFreq.slice(0, 500)) if (!emoji.test(w)) add(w);
  const ends = new Map();
  for (const [w, n] of freq) for (let k = 2; k <= 4 && k < [...w].length; ++k) {
    const e = '##' + [...w].slice(-k).join('');
    ends.set(e, (ends.get(e) || 0) + n);
  }
  for (const [e] of [...ends.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 300)) add(e);
  const v = {};
  vocab.forEach((t, i) => { v[t] = i; });
  fs.mkdirSync(path.join(here, 'wordpiece'), { recursive: true });
  const special = (t) => ({ id: v[t], content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const json = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map(special),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } },
             { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 1 } }],
      special_tokens: { '[CLS]': { id: '[CLS]', ids: [v['[CLS]']], tokens: ['[CLS]'] }, '[SEP]': { id: '[SEP]', ids: [v['[SEP]']], tokens: ['[SEP]'] } },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: v },
  };
  fs.writeFileSync(path.join(here, 'wordpiece', 'tokenizer.json'), JSON.stringify(json, null, 1));
  // The same vocabulary through other components: a Sequence normalizer, a Sequence of
  // pre-tokenizers, BertProcessing, and a non-special added token.
  const seq = JSON.parse(JSON.stringify(json));
  seq.normalizer = { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'Lowercase' }, { type: 'StripAccents' }, { type: 'Strip', strip_left: true, strip_right: true }] };
  seq.pre_tokenizer = { type: 'Sequence', pretokenizers: [{ type: 'WhitespaceSplit' }, { type: 'Punctuation', behavior: 'Isolated' }, { type: 'Digits', individual_digits: true }] };
  seq.post_processor = { type: 'BertProcessing', sep: ['[SEP]', v['[SEP]']], cls: ['[CLS]', v['[CLS]']] };
  seq.added_tokens.push({ id: v['hello'], content: 'hello', single_word: true, lstrip: false, rstrip: false, normalized: true, special: false });
  fs.mkdirSync(path.join(here, 'wordpiece-seq'), { recursive: true });
  fs.writeFileSync(path.join(here, 'wordpiece-seq', 'tokenizer.json'), JSON.stringify(seq, null, 1));
  const ws = JSON.parse(JSON.stringify(json));
  ws.normalizer = { type: 'NFKC' };
  ws.pre_tokenizer = { type: 'Sequence', pretokenizers: [{ type: 'Whitespace' }, { type: 'Digits', individual_digits: false },
    { type: 'Split', pattern: { String: '-' }, behavior: 'MergedWithNext', invert: false }] };
  ws.truncation = { direction: 'Right', max_length: 512, strategy: 'OnlyFirst', stride: 0 };
  fs.mkdirSync(path.join(here, 'wordpiece-ws'), { recursive: true });
  fs.writeFileSync(path.join(here, 'wordpiece-ws', 'tokenizer.json'), JSON.stringify(ws, null, 1));
}

// ---- byte-level BPE ----
{
  const pre = tk.byteLevelPreTokenizer(false, true);
  const words = [];
  for (const t of texts) words.push(...pretok(pre, t));
  const freq = count(words);
  const alphabet = tk.byteLevelAlphabet().sort();
  const vocab = ['<s>', '<pad>', '</s>', '<unk>', ...alphabet];
  let corpus = [...freq.entries()].map(([w, n]) => ({ syms: [...w], n }));
  const merges = [];
  for (let m = 0; m < 1200; ++m) {
    const pc = new Map();
    for (const { syms, n } of corpus) for (let i = 0; i + 1 < syms.length; ++i) {
      const k = syms[i] + ' ' + syms[i + 1];
      pc.set(k, (pc.get(k) || 0) + n);
    }
    let best = null, bestN = 1;
    for (const [k, n] of pc) if (n > bestN || (n === bestN && best !== null && k < best)) { best = k; bestN = n; }
    if (best === null) break;
    const [a, b] = best.split(' ');
    merges.push([a, b]);
    vocab.push(a + b);
    for (const w of corpus) {
      const out = [];
      for (let i = 0; i < w.syms.length; ++i) {
        if (i + 1 < w.syms.length && w.syms[i] === a && w.syms[i + 1] === b) { out.push(a + b); ++i; } else out.push(w.syms[i]);
      }
      w.syms = out;
    }
  }
  vocab.push('<mask>');
  const v = {};
  vocab.forEach((t, i) => { if (!(t in v)) v[t] = i; });
  const special = (t, lstrip) => ({ id: v[t], content: t, single_word: false, lstrip, rstrip: false, normalized: false, special: true });
  const json = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [special('<s>', false), special('<pad>', false), special('</s>', false), special('<unk>', false), special('<mask>', true)],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'RobertaProcessing', sep: ['</s>', v['</s>']], cls: ['<s>', v['<s>']], trim_offsets: true, add_prefix_space: false },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
             fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab: v, merges },
  };
  fs.mkdirSync(path.join(here, 'bpe'), { recursive: true });
  fs.writeFileSync(path.join(here, 'bpe', 'tokenizer.json'), JSON.stringify(json, null, 1));
  fs.mkdirSync(path.join(here, 'bpe-slow'), { recursive: true });
  fs.writeFileSync(path.join(here, 'bpe-slow', 'vocab.json'), JSON.stringify(v));
  fs.writeFileSync(path.join(here, 'bpe-slow', 'merges.txt'), '#version: 0.2\n' + merges.map((m) => m.join(' ')).join('\n') + '\n');
  // GPT-2's regex as a Split, ByteLevel without its own regex, a prefix space, no post-processor.
  const split = JSON.parse(JSON.stringify(json));
  split.pre_tokenizer = { type: 'Sequence', pretokenizers: [
    { type: 'Split', pattern: { Regex: "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+" }, behavior: 'Isolated', invert: false },
    { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: false }] };
  split.post_processor = null;
  fs.mkdirSync(path.join(here, 'bpe-split'), { recursive: true });
  fs.writeFileSync(path.join(here, 'bpe-split', 'tokenizer.json'), JSON.stringify(split, null, 1));
}

// ---- Precompiled charsmap (darts-clone double array) ----
function buildCharsmap(map) {  // map: Map<string key, string replacement>
  const keys = [...map.keys()].map((k) => [Buffer.from(k, 'utf8'), k]).sort((a, b) => Buffer.compare(a[0], b[0]));
  let blob = Buffer.alloc(0);
  const valueOf = new Map();
  for (const [, k] of keys) {
    valueOf.set(k, blob.length);
    blob = Buffer.concat([blob, Buffer.from(map.get(k), 'utf8'), Buffer.from([0])]);
  }
  // trie of bytes
  const root = { kids: new Map(), value: -1 };
  for (const [bytes, k] of keys) {
    let n = root;
    for (const b of bytes) { if (!n.kids.has(b)) n.kids.set(b, { kids: new Map(), value: -1 }); n = n.kids.get(b); }
    n.value = valueOf.get(k);
  }
  const units = [];
  const used = new Set();   // occupied positions
  const bases = new Set();  // bases in use (unique, so a foreign label never matches)
  const set = (i, u) => { while (units.length <= i) units.push(0); units[i] = u >>> 0; used.add(i); };
  used.add(0);
  // place(node, pos): node's own unit is at pos (label already known); choose its base.
  const queue = [[root, 0, 0]];
  while (queue.length) {
    const [node, pos, label] = queue.shift();
    const labels = [...node.kids.keys()];
    if (node.value >= 0) labels.push(0);
    if (labels.length === 0) continue;
    let b = 1;
    for (;; ++b) {
      if (bases.has(b)) continue;
      if (labels.every((c) => !used.has(b ^ c))) break;
    }
    bases.add(b);
    const offset = pos ^ b;
    if (offset >= 1 << 21) throw new Error('offset too large');
    const hasLeaf = node.value >= 0 ? 1 : 0;
    set(pos, (offset << 10) | (hasLeaf << 8) | label);
    if (node.value >= 0) set(b, 0x80000000 | node.value);
    for (const [c, kid] of node.kids) { used.add(b ^ c); queue.push([kid, b ^ c, c]); }
  }
  // Every lookup from a base reads units[base ^ c] for c < 256: pad so it stays inside.
  let maxBase = 0;
  for (const b of bases) maxBase = Math.max(maxBase, b | 255);
  while (units.length <= maxBase) units.push(0);
  const trie = Buffer.alloc(units.length * 4);
  units.forEach((u, i) => trie.writeUInt32LE(u >>> 0, i * 4));
  const head = Buffer.alloc(4);
  head.writeUInt32LE(trie.length, 0);
  return Buffer.concat([head, trie, blob]);
}

// ---- Unigram ----
{
  const map = new Map();
  const seenChars = new Set();
  for (const t of texts) for (const c of t) seenChars.add(c);
  for (let cp = 0xA0; cp < 0x3000; ++cp) seenChars.add(String.fromCodePoint(cp));
  for (let cp = 0xFF01; cp < 0xFF70; ++cp) seenChars.add(String.fromCodePoint(cp));
  for (const c of seenChars) {
    const n = c.normalize('NFKC');
    if (n !== c && !/[\uD800-\uDFFF]/.test(c)) map.set(c, n);
  }
  map.set('e\u0301', 'é'); map.set('n\u0303', 'ñ'); map.set('a\u0308', 'ä');  // graphemes looked up whole
  map.set('\u200b', ''); map.set('\u00ad', ''); map.set('\t', ' '); map.set('\n', ' '); map.set('\r', ' ');
  map.set('\u0001', ''); map.set('\u0002', ''); map.set('\u007f', '');
  const charsmap = buildCharsmap(map);
  fs.mkdirSync(path.join(here, 'unigram'), { recursive: true });
  fs.writeFileSync(path.join(here, 'unigram', 'charsmap.bin'), charsmap);  // for the C++ unit tests

  const norm = tk.sequenceNormalizer([tk.precompiled([...charsmap]), tk.replace('  ', ' ')]);
  const pre = tk.metaspacePreTokenizer('\u2581', 'always', true);
  const words = [];
  for (const t of texts) words.push(...pretok(pre, norm.normalizeString(t)));
  const freq = count(words);
  const sub = new Map();
  for (const [w, n] of freq) {
    const cs = [...w];
    for (let i = 0; i < cs.length; ++i) for (let k = 2; k <= 8 && i + k <= cs.length; ++k) {
      const s = cs.slice(i, i + k).join('');
      sub.set(s, (sub.get(s) || 0) + n);
    }
  }
  const chars = new Map();
  for (const [w, n] of freq) for (const c of w) if (!emoji.test(c)) chars.set(c, (chars.get(c) || 0) + n);
  const cand = [...sub.entries()].filter(([s, n]) => n >= 3 && !emoji.test(s))
    .sort((a, b) => b[1] * [...b[0]].length - a[1] * [...a[0]].length || (a[0] < b[0] ? -1 : 1)).slice(0, 2000);
  let total = 0;
  for (const [, n] of cand) total += n;
  for (const [, n] of chars) total += n;
  const pieces = [['<s>', 0], ['<pad>', 0], ['</s>', 0], ['<unk>', 0]];
  const have = new Set(pieces.map((p) => p[0]));
  for (const [c, n] of [...chars.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) { pieces.push([c, Math.log(n / total) - 2]); have.add(c); }
  for (const [s, n] of cand) if (!have.has(s)) { pieces.push([s, Math.log(n / total)]); have.add(s); }
  pieces.push(['<mask>', 0]);
  const id = (t) => pieces.findIndex((p) => p[0] === t);
  const special = (t, lstrip) => ({ id: id(t), content: t, single_word: false, lstrip, rstrip: false, normalized: false, special: true });
  const json = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [special('<s>', false), special('<pad>', false), special('</s>', false), special('<unk>', false), special('<mask>', true)],
    normalizer: { type: 'Sequence', normalizers: [
      { type: 'Precompiled', precompiled_charsmap: charsmap.toString('base64') },
      { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }] },
    pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } },
             { SpecialToken: { id: '</s>', type_id: 0 } }, { Sequence: { id: 'B', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [id('<s>')], tokens: ['<s>'] }, '</s>': { id: '</s>', ids: [id('</s>')], tokens: ['</s>'] } },
    },
    decoder: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true },
    model: { type: 'Unigram', unk_id: 3, vocab: pieces, byte_fallback: false },
  };
  fs.writeFileSync(path.join(here, 'unigram', 'tokenizer.json'), JSON.stringify(json, null, 1));

  // Llama-style: NFKC, Prepend + Replace instead of a pre-tokenizer, byte fallback, "first" scheme
  // through a Metaspace that does not split.
  const bf = JSON.parse(JSON.stringify(json));
  const bytes = [];
  for (let b = 0; b < 256; ++b) bytes.push(['<0x' + b.toString(16).toUpperCase().padStart(2, '0') + '>', 0]);
  bf.model.vocab = pieces.slice(0, 4).concat(bytes, pieces.slice(4));
  bf.model.byte_fallback = true;
  const bid = (t) => bf.model.vocab.findIndex((p) => p[0] === t);
  bf.added_tokens = ['<s>', '<pad>', '</s>', '<unk>', '<mask>'].map((t) => ({ ...special(t, false), id: bid(t) }));
  bf.normalizer = { type: 'Sequence', normalizers: [{ type: 'NFKC' }, { type: 'Prepend', prepend: '\u2581' }, { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' }] };
  bf.pre_tokenizer = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false };
  bf.post_processor = { type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { '<s>': { id: '<s>', ids: [bid('<s>')], tokens: ['<s>'] } } };
  bf.decoder = null;
  fs.mkdirSync(path.join(here, 'unigram-bf'), { recursive: true });
  fs.writeFileSync(path.join(here, 'unigram-bf', 'tokenizer.json'), JSON.stringify(bf, null, 1));
}
