// 1 and 2 OpenMP threads give the same numbers up to float round-off (forward and backward).
#include <omp.h>

#include <catch2/catch.hpp>

#include "model/bert.h"
#include "model/loss.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::test;

namespace {

struct RunResult {
  Mat logits;
  std::vector<Mat> grads;
};

RunResult run(BertModel& model, const Batch& b, int threads) {
  omp_set_num_threads(threads);
  ForwardCache cache;
  Rng drop(5);
  Outputs out = model.forward(b, &cache, &drop);
  Mat dlogits;
  softmax_cross_entropy(out.logits, b.labels, &dlogits);
  zero_grads(model.params());
  model.backward(b, dlogits, cache);
  RunResult r{out.logits, {}};
  for (Param* p : model.params()) r.grads.push_back(p->grad);
  return r;
}

}  // namespace

TEST_CASE("One and two threads agree to float round-off", "[model][threads]") {
  BertConfig c = tiny_config();
  c.hidden_size = 64;
  c.intermediate_size = 256;
  BertModel model(c);
  randomize(model, 31, 0.1);
  Batch b = tiny_batch(c, {20, 13, 7, 20, 3}, 17);
  const int saved = omp_get_max_threads();
  RunResult one = run(model, b, 1);
  RunResult two = run(model, b, 2);
  omp_set_num_threads(saved);
  // Float sums may be reassociated by GEMM blocking: allow a few ulps of relative error.
  CHECK((one.logits - two.logits).cwiseAbs().maxCoeff() <= 1e-5f * (1.0f + one.logits.cwiseAbs().maxCoeff()));
  for (size_t i = 0; i < one.grads.size(); ++i) {
    const float scale = 1.0f + one.grads[i].cwiseAbs().maxCoeff();
    INFO(model.params()[i]->name);
    CHECK((one.grads[i] - two.grads[i]).cwiseAbs().maxCoeff() <= 1e-5f * scale);
  }
}
