#include "distill/benchmark.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>

#include "distill/adamw.h"
#include "model/error.h"
#include "model/loss.h"

namespace moekit::distill {

namespace {

Batch synthetic_batch(const BertConfig& c, const BenchOptions& o) {
  Rng rng(o.seed);
  Batch b;
  b.batch = o.batch_size;
  b.seq = o.seq_len;
  const size_t n = static_cast<size_t>(b.n_tok());
  b.mask.assign(n, 1);
  b.type_ids.assign(n, 0);
  for (size_t i = 0; i < n; ++i)
    b.ids.push_back(static_cast<int32_t>(i % static_cast<size_t>(o.seq_len) == 0
                                             ? std::min<int64_t>(2, c.vocab_size - 1)
                                             : rng.below(static_cast<uint64_t>(c.vocab_size))));
  // Random gold values of the model's task, so --train times the loss and backward a user runs.
  const uint64_t labels = static_cast<uint64_t>(c.num_labels());
  switch (c.task) {
    case Task::single_label:
      for (int i = 0; i < o.batch_size; ++i) b.labels.push_back(static_cast<int>(rng.below(labels)));
      break;
    case Task::regression:
    case Task::multi_label:
      for (int64_t i = 0; i < o.batch_size * c.num_labels(); ++i) b.targets.push_back(static_cast<float>(rng.below(2)));
      break;
    case Task::token_classification:
      for (size_t i = 0; i < n; ++i) b.token_labels.push_back(static_cast<int>(rng.below(labels)));
      break;
  }
  return b;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

double forward_flops_per_token(const BertConfig& c, int64_t seq) {
  const double h = static_cast<double>(c.hidden_size);
  double flops = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    flops += 4 * 2 * h * h + 2 * 2 * static_cast<double>(seq) * h;  // q, k, v, out; QK^T and PV
    const bool moe = c.moe && std::find(c.moe->layers.begin(), c.moe->layers.end(), l) != c.moe->layers.end();
    if (!moe) {
      flops += 2 * 2 * h * static_cast<double>(c.intermediate_size);
    } else {
      flops += 2 * 2 * h * static_cast<double>(c.moe->neurons_per_token());
      if (c.moe->gated()) flops += 2 * h * static_cast<double>(c.moe->experts_at(l));
    }
  }
  return flops;
}

uint64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<uint64_t>(u.ru_maxrss) * 1024;
}

std::vector<BenchRow> run_benchmark(const std::vector<BertModel*>& models, const std::vector<std::string>& names,
                                    const BenchOptions& o) {
  std::vector<Batch> batches, singles;
  std::vector<std::unique_ptr<AdamW>> optimizers;
  BenchOptions one = o;
  one.batch_size = 1;
  for (size_t i = 0; i < models.size(); ++i) {
    if (o.seq_len > models[i]->config.max_seq_len())
      fail(names[i], "--seq-len " + std::to_string(o.seq_len) + " exceeds the model's " +
                         std::to_string(models[i]->config.max_seq_len()) + " positions");
    batches.push_back(synthetic_batch(models[i]->config, o));
    singles.push_back(synthetic_batch(models[i]->config, one));
    // Validate before timing: a fast model that outputs garbage must not post a number.
    Outputs out = models[i]->forward(batches.back(), nullptr, nullptr);
    if (!out.logits.allFinite()) fail(names[i], "produces non-finite logits; not benchmarked");
    if (o.train) optimizers.push_back(std::make_unique<AdamW>(models[i]->params(), AdamWOptions{}));
  }
  auto run_once = [&](size_t i) {
    BertModel& m = *models[i];
    const Batch& b = batches[i];
    if (!o.train) {
      m.forward(b, nullptr, nullptr);
      return;
    }
    Rng rng(o.seed + 1);
    ForwardCache cache;
    Outputs out = m.forward(b, &cache, &rng);
    Mat dlogits;
    task_loss(m.config.task, out.logits, b, &dlogits);
    zero_grads(m.params());
    m.backward(b, dlogits, cache);
    clip_grad_norm(m.params(), 1.0);
    optimizers[i]->step(1e-5f);
  };
  std::vector<std::vector<double>> seconds(models.size()), single_seconds(models.size());
  for (int r = 0; r < o.warmup + o.reps; ++r) {
    for (size_t i = 0; i < models.size(); ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      run_once(i);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (r >= o.warmup) seconds[i].push_back(s);
      if (o.train) continue;
      const auto t1 = std::chrono::steady_clock::now();
      models[i]->forward(singles[i], nullptr, nullptr);
      const double s1 = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
      if (r >= o.warmup) single_seconds[i].push_back(s1);
    }
  }
  std::vector<BenchRow> rows;
  const double tokens = static_cast<double>(o.batch_size) * o.seq_len;
  for (size_t i = 0; i < models.size(); ++i) {
    BenchRow row;
    row.name = names[i];
    const double med = median(seconds[i]);
    row.latency_ms = med * 1e3;
    if (!o.train) row.batch1_latency_ms = median(single_seconds[i]) * 1e3;
    row.tokens_per_second = tokens / med;
    row.tokens_per_second_min = tokens / *std::max_element(seconds[i].begin(), seconds[i].end());
    row.tokens_per_second_max = tokens / *std::min_element(seconds[i].begin(), seconds[i].end());
    row.gflops = row.tokens_per_second * forward_flops_per_token(models[i]->config, o.seq_len) * (o.train ? 3 : 1) * 1e-9;
    rows.push_back(row);
  }
  return rows;
}

}  // namespace moekit::distill
