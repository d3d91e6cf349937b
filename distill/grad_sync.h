// Data-parallel step reduction: the gradients of the trained parameters are summed over the ranks
// through one flat fp32 buffer, bucket by bucket, and so are the step's loss terms, token count
// and expert load; every rank then holds the same numbers and runs the same clipping and AdamW
// update. The buckets follow the backward's order (heads, last layer ... first layer, embeddings)
// and, when the trainer hooks stage_done() into the step's last backward, each bucket's
// non-blocking allreduce starts as soon as its grads are final, so the reduction of the last
// layers overlaps the backward of the first. With one rank nothing is copied or called.
#pragma once
#include <cstdint>
#include <vector>

#include "distill/communicator.h"
#include "distill/trainer.h"
#include "model/param.h"

namespace moekit::distill {

// What the environment may change (for measuring, and for networks where another size does
// better): MOEKIT_ALLREDUCE_BUCKET_MB (MiB, default 4) and MOEKIT_ALLREDUCE_OVERLAP=0 (every bucket
// starts after the backward: the same sums, without the overlap). Throws Error on a bad value.
struct SyncOptions {
  size_t bucket_floats = size_t{1} << 20;
  bool overlap = true;
};
SyncOptions sync_options_from_env();

class GradientSync {
 public:
  // stages: `params` grouped by when the backward finishes them (BertModel::backward_stages();
  // names not in `params`, i.e. frozen, are ignored; params in no stage go last). Empty = params
  // in their order, as one stage (no overlap possible).
  // bucket_floats: values per allreduce (2^20 floats = 4 MiB: about one layer of the small shape,
  // 0.8M values, and a seventh of a BERT-base layer, so a layer's reduction can start during the
  // next layer's backward; large enough that per-message latency stays far below the copy time).
  GradientSync(Communicator& comm, ParamList params, std::vector<ParamList> stages = {},
               size_t bucket_floats = size_t{1} << 20);

  // Gradient accumulation that sums in the same order whatever the rank count: after each local
  // micro-batch but the last, stash() adds the grads to a running sum and zeroes them (so every
  // backward starts from zero); the sum is added back to each grad once it is final (stage_done or
  // finish). Then 2 ranks give bit-identical sums to 1 process with --grad-accum 2 (g0 + g1 either way).
  void stash();
  // The step's last local backward has finished stage `stage` (BackwardHook): its grads get the
  // stash added and copied into the buffer, every bucket now complete starts its allreduce, and
  // the started ones are given a chance to progress. Only with more than one rank.
  void stage_done(size_t stage);
  // Ends the step's gradient sum: adds the stash to the grads not yet final, starts the remaining
  // buckets, waits for all and copies the sums back. Then every rank holds the same grads.
  void finish();
  // finish() without overlap (everything starts after the backward): the same sums, bit for bit.
  void sum_gradients() { finish(); }
  // Sums the step's loss terms (every rank must have the same term names), expert load and tokens.
  void sum_stats(LossTerms& step, int64_t& tokens);

  // Whether stage_done() has anything to do (more than one rank and more than one stage).
  bool overlaps() const { return comm_.size() > 1 && stage_end_.size() > 1; }
  // Wall time so far: blocked in sum_stats (mostly waiting for a slower rank's backward: the ranks
  // meet there), blocked in finish() waiting for the gradient sums (after the ranks met: the
  // reduction the backward did not hide), and in all of this class's work (plus copies, starts).
  double meet_seconds() const { return meet_seconds_; }
  double wait_seconds() const { return wait_seconds_; }
  double seconds() const { return seconds_; }
  size_t floats() const { return flat_.size(); }
  size_t buckets() const { return floats() ? (floats() + bucket_ - 1) / bucket_ : 0; }

 private:
  void ready_up_to(size_t param_end);  // params_[0, param_end) are final: copy, start buckets

  Communicator& comm_;
  ParamList params_;               // in flat-buffer (backward) order
  std::vector<size_t> offset_;     // flat offset of params_[i]; offset_.back() = total
  std::vector<size_t> stage_end_;  // params_[0, stage_end_[s]) are final after stage s
  size_t bucket_;
  std::vector<float> flat_;
  std::vector<Mat> stash_;
  bool stashed_ = false;
  size_t ready_ = 0;    // params_[0, ready_) are in the buffer this step
  size_t started_ = 0;  // flat_[0, started_) is being summed
  double meet_seconds_ = 0, wait_seconds_ = 0, seconds_ = 0;
};

}  // namespace moekit::distill
