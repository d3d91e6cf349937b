// The reference side of tests/cli/e2e_tokenizer_parity.sh: encodes a JSONL dataset with the
// `tokenizers` npm package (the Node.js binding of Hugging Face's Rust tokenizers) and prints
// what `moekit tokenize` prints, {"ids", "type_ids", "tokens"} per line.
//   node tokenizer_reference.js DIR DATA.jsonl [--pairs] [--max-seq-len N]
// DIR holds tokenizer.json, or RoBERTa's vocab.json + merges.txt (built as transformers'
// RobertaConverter builds the fast tokenizer from them).
'use strict';
const fs = require('fs');
const path = require('path');
const tk = require('tokenizers');

async function main() {
  const [dir, data, ...rest] = process.argv.slice(2);
  const pairs = rest.includes('--pairs');
  const i = rest.indexOf('--max-seq-len');
  const maxLen = i >= 0 ? Number(rest[i + 1]) : 0;
  let tok;
  let fileTruncation = null;
  if (fs.existsSync(path.join(dir, 'tokenizer.json'))) {
    tok = tk.Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
    fileTruncation = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')).truncation;
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
    out.push(JSON.stringify({ ids: e.getIds(), type_ids: e.getTypeIds(), tokens: e.getTokens() }));
  }
  process.stdout.write(out.join('\n') + '\n');
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
