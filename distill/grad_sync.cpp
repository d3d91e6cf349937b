#include "distill/grad_sync.h"

#include <algorithm>
#include <chrono>

#include "model/error.h"

namespace moekit::distill {

GradientSync::GradientSync(Communicator& comm, ParamList params, size_t bucket_floats)
    : comm_(comm), params_(std::move(params)), bucket_(std::max<size_t>(1, bucket_floats)) {
  if (comm_.size() > 1) flat_.resize(count_values(params_));
}

void GradientSync::sum_gradients() {
  if (comm_.size() == 1) return;
  const auto start = std::chrono::steady_clock::now();
  // Copy in, reduce, copy out one bucket at a time; a bucket may span parameters.
  size_t param = 0, offset = 0;  // where the next bucket starts: value `offset` of params_[param]
  for (size_t begin = 0; begin < flat_.size(); begin += bucket_) {
    const size_t end = std::min(flat_.size(), begin + bucket_);
    size_t p = param, o = offset;
    for (size_t at = begin; at < end;) {
      Mat& g = params_[p]->grad_buffer();
      const size_t n = std::min(end - at, static_cast<size_t>(g.size()) - o);
      std::copy(g.data() + o, g.data() + o + n, flat_.data() + at);
      at += n;
      o += n;
      if (o == static_cast<size_t>(g.size())) ++p, o = 0;
    }
    comm_.allreduce_sum(flat_.data() + begin, end - begin);
    for (size_t at = begin; at < end;) {
      Mat& g = params_[param]->grad_buffer();
      const size_t n = std::min(end - at, static_cast<size_t>(g.size()) - offset);
      std::copy(flat_.data() + at, flat_.data() + at + n, g.data() + offset);
      at += n;
      offset += n;
      if (offset == static_cast<size_t>(g.size())) ++param, offset = 0;
    }
  }
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void GradientSync::sum_stats(LossTerms& step, int64_t& tokens) {
  if (comm_.size() == 1) return;
  // One message: [total, terms by name, tokens, expert load]; a rank whose message has another
  // length (another model or loss) fails instead of mixing numbers.
  std::vector<double> v{step.total};
  for (const auto& [name, value] : step.terms) v.push_back(value);
  v.push_back(static_cast<double>(tokens));
  for (const auto& layer : step.expert_tokens)
    for (int64_t n : layer) v.push_back(static_cast<double>(n));
  const auto length = static_cast<int64_t>(v.size());
  if (comm_.allreduce_max(length) != -comm_.allreduce_max(-length))  // max == min: equal on every rank
    fail("", "the ranks disagree on the step's loss terms (different models or options on some rank?)");
  comm_.allreduce_sum(v.data(), v.size());
  size_t i = 0;
  step.total = v[i++];
  for (auto& [name, value] : step.terms) value = v[i++];
  tokens = static_cast<int64_t>(v[i++]);
  for (auto& layer : step.expert_tokens)
    for (int64_t& n : layer) n = static_cast<int64_t>(v[i++]);
}

}  // namespace moekit::distill
