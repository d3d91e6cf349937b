#include "compress/importance.h"

#include <cmath>

#include "io/progress.h"
#include "model/error.h"
#include "model/loss.h"

namespace moekit::compress {

Importance score_importance(BertModel& model, const std::vector<io::EncodedExample>& examples, size_t batch_size,
                            int64_t max_batches, bool progress, size_t shard, size_t shards) {
  if (examples.empty()) fail("", "importance needs at least one labelled example");
  const size_t n_layers = model.layers.size();
  Importance imp;
  imp.layers.resize(n_layers);
  for (size_t l = 0; l < n_layers; ++l)
    if (!model.layers[l].is_moe()) imp.layers[l].assign(static_cast<size_t>(model.config.intermediate_size), 0.0);
  auto batches = io::length_grouped_batches(examples, batch_size);
  if (max_batches > 0 && static_cast<int64_t>(batches.size()) > max_batches) batches.resize(static_cast<size_t>(max_batches));
  if (shards > 1) {  // this shard's batches, in order
    std::vector<std::vector<size_t>> mine;
    for (size_t b = shard; b < batches.size(); b += shards) mine.push_back(std::move(batches[b]));
    batches = std::move(mine);
  }
  io::Progress bar("importance", static_cast<int64_t>(batches.size()), "batches");
  const ParamList params = model.params();
  int64_t done = 0;
  for (const auto& indices : batches) {
    Batch b = io::make_batch(examples, indices, static_cast<int32_t>(model.config.pad_token_id));
    if (!b.labelled()) fail("", "importance needs labelled examples (the task loss against gold labels)");
    ForwardCache cache;
    Outputs out = model.forward(b, &cache, nullptr);  // eval mode: no dropout
    Mat dlogits;
    task_loss(model.config.task, out.logits, b, &dlogits);
    dlogits *= static_cast<float>(b.batch);  // sum of per-example losses, not their mean
    std::vector<DenseFFN::Taps> taps;
    model.backward(b, dlogits, cache, nullptr, &taps);
    for (size_t l = 0; l < n_layers; ++l) {
      if (imp.layers[l].empty()) continue;
      const Mat& z = cache.layers[l].ffn.z;
      Mat h16;
      const Mat& h = cache.layers[l].ffn.mid.input(h16);
      const Mat& dz = taps[l].dz;
      const Mat& dh = taps[l].da;
      const auto& b1 = model.layers[l].ffn.intermediate.bias.value;
      const Eigen::Index ffn = z.cols();
      auto& acc = imp.layers[l];
#pragma omp parallel for schedule(static)
      for (Eigen::Index j = 0; j < ffn; ++j) {  // threads own disjoint neurons: thread-count independent
        double sum_abs = 0;
        for (int64_t s = 0; s < b.batch; ++s) {
          double term = 0;
          for (int64_t t = 0; t < b.seq; ++t) {
            const Eigen::Index r = s * b.seq + t;
            if (!b.mask[static_cast<size_t>(r)]) continue;
            term += static_cast<double>(dz(r, j)) * (z(r, j) - b1(0, j)) + static_cast<double>(dh(r, j)) * h(r, j);
          }
          sum_abs += std::abs(term);
        }
        acc[static_cast<size_t>(j)] += sum_abs;
      }
    }
    zero_grads(params);  // the weight grads of this backward are not needed
    imp.examples += b.batch;
    if (progress) bar.update(++done);
  }
  if (progress) bar.finish();
  return imp;
}

}  // namespace moekit::compress
