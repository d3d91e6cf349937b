// 1 and 2 OpenMP threads give the same numbers up to float round-off (forward and backward).
#include <omp.h>

#include <catch2/catch.hpp>

#include "model/activation.h"
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

// Inference on packed float weights takes its own path: each FFN's activation inside the
// up-projection (a oneDNN post-op), attention reading Q, K and V in place, MoE experts in row
// chunks across the threads. The training forward runs none of these, so it is the reference:
// every thread count (3 splits the rows unevenly), a batch of one, every activation, dense and MoE.
TEST_CASE("Packed float inference equals the training forward at 1, 2 and 3 threads", "[model][threads]") {
  const int saved = omp_get_max_threads();
  for (const bool moe : {false, true})
    for (const Activation act : {Activation::gelu, Activation::gelu_new, Activation::relu}) {
      BertConfig c = tiny_config(act);
      c.hidden_size = 64;
      c.intermediate_size = 256;
      if (moe) {
        MoeConfig m;
        m.n_experts = 4;
        m.expert_size = 64;
        m.router = "hash";
        m.layers = {0, 1};
        c.moe = m;
      }
      BertModel model(c);
      randomize(model, 37, 0.2);
      model.pack_for_inference();  // a forward with a cache still runs the training path
      for (const std::vector<int64_t>& lengths : {std::vector<int64_t>{20, 13, 7, 20, 3}, std::vector<int64_t>{11}}) {
        const Batch b = tiny_batch(c, lengths, 19);
        ForwardCache cache;
        const Mat reference = model.forward(b, &cache, nullptr).logits;
        for (int threads : {1, 2, 3}) {
          INFO((moe ? "MoE" : "dense") << ", " << activation_name(act) << ", " << lengths.size() << " sequences, "
                                       << threads << " threads");
          omp_set_num_threads(threads);
          const Mat logits = model.forward(b, nullptr, nullptr).logits;
          omp_set_num_threads(saved);
          CHECK((logits - reference).cwiseAbs().maxCoeff() <= 1e-5f * (1.0f + reference.cwiseAbs().maxCoeff()));
        }
      }
    }
}

// Inference of at least two sequences per thread splits the batch's sequences between the
// threads (BertModel::forward_by_thread) into contiguous runs of even padded size, each cut to its
// longest sequence (sequence heads) or kept at the batch's length (per-token heads). The logits
// and the MoE load counts must not depend on the split: 1 thread runs the batch whole.
TEST_CASE("Inference split by sequences between threads gives the whole batch's logits and expert loads",
          "[model][threads]") {
  const int saved = omp_get_max_threads();
  for (const bool per_token : {false, true}) {
    BertConfig c = tiny_config(Activation::gelu);
    if (per_token) {
      c.task = Task::token_classification;
      c.labels = {"B-PER", "I-PER", "O"};
    }
    MoeConfig m;
    m.n_experts = 4;
    m.expert_size = 8;
    m.router = "hash";
    m.layers = {1};
    c.moe = m;
    BertModel model(c);
    randomize(model, 41, 0.2);
    model.pack_for_inference();
    // Mixed lengths, and sorted as the server sorts them (runs of unequal counts).
    for (const std::vector<int64_t>& lengths :
         {std::vector<int64_t>{9, 4, 12, 12, 1, 7, 5}, std::vector<int64_t>{2, 2, 3, 3, 3, 4, 5, 6, 9, 12}}) {
      const Batch b = tiny_batch(c, lengths, 23);
      omp_set_num_threads(1);
      const Outputs whole = model.forward(b, nullptr, nullptr);
      for (int threads : {2, 3}) {
        INFO((per_token ? "token head, " : "sequence head, ") << lengths.size() << " sequences, " << threads
                                                              << " threads");
        omp_set_num_threads(threads);
        const Outputs split = model.forward(b, nullptr, nullptr);
        omp_set_num_threads(saved);
        REQUIRE(split.logits.rows() == whole.logits.rows());
        CHECK((split.logits - whole.logits).cwiseAbs().maxCoeff() <=
              1e-5f * (1.0f + whole.logits.cwiseAbs().maxCoeff()));
        CHECK(split.expert_tokens == whole.expert_tokens);
      }
    }
  }
  omp_set_num_threads(saved);
}
