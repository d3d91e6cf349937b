// Runs an ONNX model in ONNX Runtime (npm onnxruntime-node) on batches from a JSON file and
// prints their logits as JSON: the independent reference `moekit onnx-check` and the ONNX export
// tests hold moekit to (this file is compiled into moekit, which writes it out for node).
// Usage: node ort_logits.js MODEL.onnx INPUT.json  with INPUT = [{batch, seq, input_ids,
// attention_mask, token_type_ids}, ...] (flat row-major int arrays; only the graph's inputs are fed). Each row has "first_seconds",
// the wall time of its first run. Optional env MOEKIT_ORT_REPS times each batch that many more
// times and adds "seconds" (median per run); MOEKIT_ORT_THREADS sets ONNX Runtime's intra-op
// threads (default 1).
const ort = require('onnxruntime-node');
const fs = require('fs');

async function main() {
  const [model, input] = process.argv.slice(2);
  const threads = parseInt(process.env.MOEKIT_ORT_THREADS || '1', 10);
  const session = await ort.InferenceSession.create(model, {intraOpNumThreads: threads, interOpNumThreads: 1});
  const batches = JSON.parse(fs.readFileSync(input, 'utf8'));
  const reps = parseInt(process.env.MOEKIT_ORT_REPS || '0', 10);
  const out = [];
  for (const b of batches) {
    const dims = [b.batch, b.seq];
    const feeds = {};
    for (const name of session.inputNames)  // a DistilBERT graph has no token_type_ids
      feeds[name] = new ort.Tensor('int64', BigInt64Array.from(b[name].map(BigInt)), dims);
    const t_first = process.hrtime.bigint();
    const result = await session.run(feeds);
    const row = {logits: Array.from(result.logits.data), first_seconds: Number(process.hrtime.bigint() - t_first) / 1e9};
    if (reps > 0) {
      const times = [];
      for (let r = 0; r < reps; ++r) {
        const t0 = process.hrtime.bigint();
        await session.run(feeds);
        times.push(Number(process.hrtime.bigint() - t0) / 1e9);
      }
      times.sort((a, c) => a - c);
      row.seconds = times[Math.floor(times.length / 2)];
    }
    out.push(row);
  }
  process.stdout.write(JSON.stringify(out));
}
main().catch((e) => {
  process.stderr.write(String(e) + '\n');
  process.exit(1);
});
