// Data parallelism's building blocks without MPI: the single-process communicator is the
// identity, the gradient and stats sums do nothing on one rank, and sharded evaluation covers
// every example exactly once with the unsharded logits (the MPI runs: tests/cli/e2e_mpi.sh).
#include <catch2/catch.hpp>

#include "distill/communicator.h"
#include "distill/evaluate.h"
#include "distill/grad_sync.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::test;

TEST_CASE("One process: collectives are the identity and shards own everything", "[distill][parallel]") {
  distill::Communicator& one = distill::single_process();
  CHECK(one.rank() == 0);
  CHECK(one.size() == 1);
  CHECK(one.is_root());
  std::vector<float> f{1.5f, -2};
  one.allreduce_sum(f.data(), f.size());
  CHECK(f == std::vector<float>{1.5f, -2});
  CHECK(one.allreduce_max(7) == 7);
  for (size_t i = 0; i < 5; ++i) CHECK(distill::owns(i, one));

  Param p;
  p.init("w", 2, 3, true);
  p.grad_buffer().setConstant(0.25f);
  distill::GradientSync sync(one, {&p});
  sync.sum_gradients();
  CHECK(sync.floats() == 0);  // nothing allocated or copied on one rank
  CHECK(p.grad(1, 2) == 0.25f);
  distill::LossTerms terms;
  terms.total = 3;
  int64_t tokens = 11;
  sync.sum_stats(terms, tokens);
  CHECK(terms.total == 3);
  CHECK(tokens == 11);
}

TEST_CASE("Sharded evaluation: the shards' logits add up to the whole run's, bit for bit", "[distill][parallel]") {
  BertConfig c = tiny_config();
  BertModel model(c);
  randomize(model, 7, 0.3);
  const Batch b = tiny_batch(c, {9, 4, 7, 5, 8, 3, 6}, 8);
  std::vector<io::EncodedExample> examples;
  for (int64_t s = 0; s < b.batch; ++s) {
    io::EncodedExample e;
    for (int64_t t = 0; t < b.seq && b.mask[static_cast<size_t>(s * b.seq + t)]; ++t)
      e.ids.push_back(b.ids[static_cast<size_t>(s * b.seq + t)]), e.type_ids.push_back(0);
    examples.push_back(e);
  }
  const auto whole = distill::run_inference(model, examples, 2);
  Mat sum = Mat::Zero(whole.logits.rows(), whole.logits.cols());
  std::vector<int> owners(examples.size(), 0);
  for (size_t shard = 0; shard < 2; ++shard) {
    const auto part = distill::run_inference(model, examples, 2, "", shard, 2);
    sum += part.logits;
    for (size_t i = 0; i < examples.size(); ++i)
      if (part.predicted[i] >= 0) {
        ++owners[i];
        CHECK(part.predicted[i] == whole.predicted[i]);
      }
  }
  CHECK(owners == std::vector<int>(examples.size(), 1));
  CHECK(sum == whole.logits);  // other shards' rows are exact zeros
}
