// Data parallelism's building blocks without MPI: the single-process communicator is the
// identity, the gradient and stats sums do nothing on one rank, and sharded evaluation covers
// every example exactly once with the unsharded logits (the MPI runs: tests/cli/e2e_mpi.sh).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>

#include "distill/communicator.h"
#include "distill/evaluate.h"
#include "distill/grad_sync.h"
#include "model/loss.h"
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

namespace {

// Rank 0 of two whose partner holds the same grads: every sum doubles the values (exact in
// float). A non-blocking sum doubles what the buffer held when it started (a real MPI may send it
// any time after), so a bucket started before its grads were final gives a wrong sum; it also
// records during which backward stage each started and whether the buffer was left untouched.
class TwinRanks final : public distill::Communicator {
 public:
  struct Start {
    float* data;
    std::vector<float> seen;
    int stage;
  };
  int rank() const override { return 0; }
  int size() const override { return 2; }
  void allreduce_sum(float* d, size_t n) override { std::for_each(d, d + n, [](float& x) { x *= 2; }); }
  void allreduce_sum(double* d, size_t n) override { std::for_each(d, d + n, [](double& x) { x *= 2; }); }
  int64_t allreduce_max(int64_t value) override { return value; }
  void start_allreduce_sum(float* d, size_t n) override { started.push_back({d, std::vector<float>(d, d + n), stage}); }
  void progress() override { ++progress_calls; }
  void wait_all() override {
    for (; waited < started.size(); ++waited) {
      Start& s = started[waited];
      untouched = untouched && std::equal(s.seen.begin(), s.seen.end(), s.data);
      std::transform(s.seen.begin(), s.seen.end(), s.data, [](float x) { return 2 * x; });
    }
  }
  void broadcast(float*, size_t, int) override {}
  [[noreturn]] void abort(int) override { std::abort(); }

  std::vector<Start> started;
  size_t waited = 0;
  bool untouched = true;  // no buffer changed between its start and the wait
  int stage = -1;  // the backward stage running (-1: none)
  int progress_calls = 0;
};

// Grad accumulation of two micro-batches through `sync` (stash after the first), with the second
// backward hooked to stage_done when `overlap`; returns every param's grad after finish().
std::vector<Mat> accumulate(BertModel& m, distill::GradientSync& sync, TwinRanks* twin, bool overlap) {
  const ParamList all = m.params();
  zero_grads(all);
  for (uint64_t seed : {3, 4}) {
    const Batch b = tiny_batch(m.config, {6, 3, 5}, seed);
    ForwardCache cache;
    const Outputs out = m.forward(b, &cache, nullptr);
    Mat dlogits;
    task_loss(m.config.task, out.logits, b, &dlogits);
    if (seed == 4) {
      sync.stash();
      if (overlap)
        m.backward_hook = [&](size_t s) {
          twin->stage = static_cast<int>(s);
          sync.stage_done(s);
        };
    }
    m.backward(b, dlogits, cache);
    m.backward_hook = nullptr;
    if (twin) twin->stage = -1;
  }
  sync.finish();
  std::vector<Mat> grads;
  for (const Param* p : all) grads.push_back(p->grad);
  return grads;
}

}  // namespace

TEST_CASE("Overlapped gradient sums start each bucket once its grads are final, bit-identical to sums after the backward",
          "[distill][parallel]") {
  BertModel m(tiny_config());
  randomize(m, 7, 0.3);
  const ParamList all = m.params();
  ParamList trained(all.begin() + 1, all.end());  // the first (word embeddings) frozen: left as it is
  const size_t bucket = 100;                      // buckets that straddle params and stages

  // One process: the reference sum g1 + g0 (stash route).
  distill::GradientSync one(distill::single_process(), trained, m.backward_stages(), bucket);
  const std::vector<Mat> local = accumulate(m, one, nullptr, false);

  TwinRanks after;
  distill::GradientSync plain(after, trained, m.backward_stages(), bucket);
  CHECK(plain.overlaps());
  const std::vector<Mat> summed = accumulate(m, plain, &after, false);
  for (const auto& s : after.started) CHECK(s.stage == -1);  // all started after the backward

  TwinRanks during;
  distill::GradientSync overlapped(during, trained, m.backward_stages(), bucket);
  const std::vector<Mat> summed_overlap = accumulate(m, overlapped, &during, true);

  REQUIRE(during.started.size() == overlapped.buckets());
  REQUIRE(overlapped.buckets() > 10);
  for (size_t i = 0; i < all.size(); ++i) {
    INFO(all[i]->name);
    CHECK(summed_overlap[i] == summed[i]);  // bit for bit
    if (i == 0)
      CHECK(summed[i] == local[i]);  // frozen: not summed
    else
      CHECK(summed[i] == 2.0f * local[i]);
  }
  // Started during the backward (the bit-identity above shows each took final grads then), and
  // no buffer written to while its sum ran.
  const int last_stage = static_cast<int>(m.layers.size()) + 1;
  size_t early = 0;
  for (const auto& s : during.started) early += s.stage >= 0 && s.stage < last_stage;
  CHECK(early * 2 >= during.started.size());
  CHECK(during.untouched);
  CHECK(after.untouched);
  CHECK(during.progress_calls == last_stage + 1);  // one chance to progress per stage
}

TEST_CASE("Gradient sync options from the environment: bucket size in MiB, overlap 0/1, bad values named",
          "[distill][parallel]") {
  auto with = [](const char* bucket, const char* overlap) {
    setenv("MOEKIT_ALLREDUCE_BUCKET_MB", bucket, 1);
    setenv("MOEKIT_ALLREDUCE_OVERLAP", overlap, 1);
    return distill::sync_options_from_env();
  };
  CHECK(with("", "").bucket_floats == size_t{1} << 20);  // empty = unset: the defaults
  CHECK(with("", "").overlap);
  CHECK(with("0.5", "0").bucket_floats == size_t{1} << 17);
  CHECK_FALSE(with("0.5", "0").overlap);
  CHECK_THROWS_WITH(with("4MB", "1"), Catch::Contains("MOEKIT_ALLREDUCE_BUCKET_MB") && Catch::Contains("\"4MB\""));
  CHECK_THROWS_WITH(with("0", "1"), Catch::Contains("expected MiB in (0, 1024]"));
  CHECK_THROWS_WITH(with("4", "yes"), Catch::Contains("MOEKIT_ALLREDUCE_OVERLAP") && Catch::Contains("expected 0 or 1"));
  unsetenv("MOEKIT_ALLREDUCE_BUCKET_MB");
  unsetenv("MOEKIT_ALLREDUCE_OVERLAP");
}
