// Load generator for `moekit serve` (numbers for notes, not a test): C concurrent clients, each
// sending R /predict requests of one text, keep-alive. Prints requests/s, tokens/s (from the
// server's moekit_tokens_total), p50/p99 latency and the status counts, as JSON.
// Usage: node bench/serve_load.js URL CLIENTS REQUESTS_PER_CLIENT WORDS_PER_TEXT
const [url, clients, perClient, words] = process.argv.slice(2).map((v, i) => (i ? parseInt(v, 10) : v));

async function tokens() {
  const text = await (await fetch(url + '/metrics')).text();
  const m = text.match(/^moekit_tokens_total (\d+)/m);
  return m ? parseInt(m[1], 10) : 0;
}

async function client(id, latencies, statuses) {
  for (let r = 0; r < perClient; ++r) {
    const text = Array.from({length: words}, (_, i) => 'w' + ((id * 7 + r * 13 + i) % 40)).join(' ');
    const t0 = process.hrtime.bigint();
    const res = await fetch(url + '/predict', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                               body: JSON.stringify({inputs: text, truncate: true})});
    await res.text();
    latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    statuses[res.status] = (statuses[res.status] || 0) + 1;
  }
}

(async () => {
  const latencies = [], statuses = {};
  const before = await tokens();
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({length: clients}, (_, i) => client(i, latencies, statuses)));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const done = (await tokens()) - before;
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  console.log(JSON.stringify({clients, requests: latencies.length, seconds, requests_per_second: latencies.length / seconds,
                              tokens_per_second: done / seconds, p50_ms: q(0.5), p99_ms: q(0.99), statuses}));
})();
