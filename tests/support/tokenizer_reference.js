// The reference side of tests/cli/e2e_tokenizer_parity.sh: encodes a JSONL dataset with the
// `tokenizers` npm package (the Node.js binding of Hugging Face's Rust tokenizers) and prints
// what `moekit tokenize` prints, {"ids", "type_ids", "tokens"} per line (with --offsets also
// "offsets", as byte ranges).
//   node tokenizer_reference.js DIR DATA.jsonl [--pairs] [--max-seq-len N] [--offsets]
// DIR holds tokenizer.json, or RoBERTa's vocab.json + merges.txt (built as transformers'
// RobertaConverter builds the fast tokenizer from them), or BERT's vocab.txt (built as
// transformers' BertConverter builds BertTokenizerFast; do_lower_case from tokenizer_config.json).
'use strict';
const fs = require('fs');
const path = require('path');
const tk = require('tokenizers');

// The Node binding encodes with encode_char_offsets: offsets count Unicode code points (not
// UTF-16 units, not bytes). moekit and TEI give byte offsets, so each is converted here through
// the byte position of every code point of the token's own text (a pair's second text for
// sequence 1; special tokens added by the post-processor keep [0, 0]).
function byteOffsets(e, text, pair) {
  const positions = (s) => {
    const at = [0];
    for (const ch of s) at.push(at[at.length - 1] + Buffer.byteLength(ch, 'utf8'));
    return at;
  };
  const first = positions(text), second = pair === null ? null : positions(pair);
  const seqs = e.getSequenceIds();
  return e.getOffsets().map(([start, stop], k) => {
    if (seqs[k] === null || seqs[k] === undefined) return [0, 0];
    const at = seqs[k] === 1 ? second : first;
    return [at[start], at[stop]];
  });
}

async function main() {
  const [dir, data, ...rest] = process.argv.slice(2);
  const pairs = rest.includes('--pairs');
  const withOffsets = rest.includes('--offsets');
  const i = rest.indexOf('--max-seq-len');
  const maxLen = i >= 0 ? Number(rest[i + 1]) : 0;
  let tok;
  let fileTruncation = null;
  if (fs.existsSync(path.join(dir, 'tokenizer.json'))) {
    tok = tk.Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
    fileTruncation = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')).truncation;
  } else if (fs.existsSync(path.join(dir, 'vocab.txt'))) {
    const cfgFile = path.join(dir, 'tokenizer_config.json');
    const cfg = fs.existsSync(cfgFile) ? JSON.parse(fs.readFileSync(cfgFile, 'utf8')) : {};
    const lower = cfg.do_lower_case !== false;
    const model = await tk.WordPiece.fromFile(path.join(dir, 'vocab.txt'), { unkToken: '[UNK]' });
    tok = new tk.Tokenizer(model);
    tok.setNormalizer(tk.bertNormalizer({ cleanText: true, handleChineseChars: true, stripAccents: lower, lowercase: lower }));
    tok.setPreTokenizer(tk.bertPreTokenizer());
    const vocab = fs.readFileSync(path.join(dir, 'vocab.txt'), 'utf8').split('\n').map((l) => l.replace(/\r$/, ''));
    tok.setPostProcessor(tk.bertProcessing(['[SEP]', vocab.indexOf('[SEP]')], ['[CLS]', vocab.indexOf('[CLS]')]));
    tok.addSpecialTokens(['[UNK]', '[SEP]', '[PAD]', '[CLS]', '[MASK]'].filter((t) => vocab.includes(t)));
  } else {
    const model = await tk.BPE.fromFile(path.join(dir, 'vocab.json'), path.join(dir, 'merges.txt'));
    tok = new tk.Tokenizer(model);
    tok.setPreTokenizer(tk.byteLevelPreTokenizer(false, true));
    const vocab = JSON.parse(fs.readFileSync(path.join(dir, 'vocab.json'), 'utf8'));
    tok.setPostProcessor(tk.robertaProcessing(['</s>', vocab['</s>']], ['<s>', vocab['<s>']], true, false));
    tok.addAddedTokens(['<s>', '<pad>', '</s>', '<unk>', '<mask>'].filter((t) => t in vocab).map(
      (t) => new tk.AddedToken(t, true, { leftStrip: t === '<mask>', normalized: false })));
  }
  if (maxLen > 0) {
    const opts = { maxLength: maxLen };
    if (fileTruncation) Object.assign(opts, { strategy: fileTruncation.strategy, direction: fileTruncation.direction.toLowerCase() });
    tok.setTruncation(maxLen, opts);
  } else {
    tok.disableTruncation();
  }
  tok.disablePadding();
  const out = [];
  for (const line of fs.readFileSync(data, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const ex = JSON.parse(line);
    const e = await tok.encode(ex.text, pairs ? ex.text_pair : null);
    const row = { ids: e.getIds(), type_ids: e.getTypeIds(), tokens: e.getTokens() };
    if (withOffsets) row.offsets = byteOffsets(e, ex.text, pairs ? ex.text_pair : null);
    out.push(JSON.stringify(row));
  }
  process.stdout.write(out.join('\n') + '\n');
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
