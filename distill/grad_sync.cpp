#include "distill/grad_sync.h"

#include <algorithm>
#include <chrono>

#include "model/error.h"

namespace moekit::distill {

GradientSync::GradientSync(Communicator& comm, ParamList params, size_t bucket_floats)
    : comm_(comm), params_(std::move(params)), bucket_(std::max<size_t>(1, bucket_floats)) {
  if (comm_.size() > 1) flat_.resize(count_values(params_));
}

namespace {

// Where the flat buffer's next value lives: value `offset` of params[param].
struct Cursor {
  size_t param = 0, offset = 0;
};

// Calls f(grad values, flat index, count) for the pieces of flat values [begin, end), which may
// span parameters, and moves the cursor past them.
template <class F>
void for_pieces(const ParamList& params, Cursor& c, size_t begin, size_t end, F f) {
  for (size_t at = begin; at < end;) {
    Mat& g = params[c.param]->grad_buffer();
    const size_t n = std::min(end - at, static_cast<size_t>(g.size()) - c.offset);
    f(g.data() + c.offset, at, n);
    at += n;
    c.offset += n;
    if (c.offset == static_cast<size_t>(g.size())) ++c.param, c.offset = 0;
  }
}

}  // namespace

void GradientSync::stash() {
  stash_.resize(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    Mat& g = params_[i]->grad_buffer();
    if (stashed_)
      stash_[i] += g;
    else
      stash_[i] = g;
    g.setZero();
  }
  stashed_ = true;
}

void GradientSync::unstash() {
  if (!stashed_) return;
  for (size_t i = 0; i < params_.size(); ++i) params_[i]->grad_buffer() += stash_[i];
  stashed_ = false;
}

void GradientSync::sum_gradients() {
  if (comm_.size() == 1) return;
  const auto start = std::chrono::steady_clock::now();
  Cursor out;  // copy in, reduce, copy out one bucket at a time
  for (size_t begin = 0; begin < flat_.size(); begin += bucket_) {
    const size_t end = std::min(flat_.size(), begin + bucket_);
    Cursor in = out;
    for_pieces(params_, in, begin, end, [&](const float* g, size_t at, size_t n) { std::copy(g, g + n, flat_.data() + at); });
    comm_.allreduce_sum(flat_.data() + begin, end - begin);
    for_pieces(params_, out, begin, end, [&](float* g, size_t at, size_t n) {
      std::copy(flat_.data() + at, flat_.data() + at + n, g);
    });
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
