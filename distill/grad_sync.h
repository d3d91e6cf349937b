// Data-parallel step reduction: after each rank's backward, the gradients of the trained
// parameters are summed over the ranks through one flat fp32 buffer, bucket by bucket, and so are
// the step's loss terms, token count and expert load; every rank then holds the same numbers and
// runs the same clipping and AdamW update. With one rank nothing is copied or called.
#pragma once
#include <cstdint>
#include <vector>

#include "distill/communicator.h"
#include "distill/trainer.h"
#include "model/param.h"

namespace moekit::distill {

class GradientSync {
 public:
  // bucket_floats: values per MPI_Allreduce (4M floats = 16 MB: large enough for the network's
  // bandwidth, small enough to keep the extra copy in cache-sized pieces).
  GradientSync(Communicator& comm, ParamList params, size_t bucket_floats = size_t{1} << 22);

  // Gradient accumulation that sums in the same order whatever the rank count: after each local
  // micro-batch but the last, stash() adds the grads to a running sum and zeroes them (so every
  // backward starts from zero); unstash() after the last one adds the sum back. Then 2 ranks give
  // bit-identical sums to 1 process with --grad-accum 2 (g0 + g1 either way).
  void stash();
  void unstash();
  // Sums the grads of the params over the ranks.
  void sum_gradients();
  // Sums the step's loss terms (every rank must have the same term names), expert load and tokens.
  void sum_stats(LossTerms& step, int64_t& tokens);

  double seconds() const { return seconds_; }  // wall time in sum_gradients so far
  size_t floats() const { return flat_.size(); }

 private:
  Communicator& comm_;
  ParamList params_;
  size_t bucket_;
  std::vector<float> flat_;
  std::vector<Mat> stash_;
  bool stashed_ = false;
  double seconds_ = 0;
};

}  // namespace moekit::distill
