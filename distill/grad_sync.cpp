#include "distill/grad_sync.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <set>

#include "model/error.h"

namespace moekit::distill {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

}  // namespace

SyncOptions sync_options_from_env() {
  SyncOptions o;
  if (const char* mb = std::getenv("MOEKIT_ALLREDUCE_BUCKET_MB"); mb && *mb) {
    char* end = nullptr;
    const double v = std::strtod(mb, &end);
    if (*end || !(v > 0) || v > 1024)
      fail("MOEKIT_ALLREDUCE_BUCKET_MB", std::string("expected MiB in (0, 1024], got \"") + mb + "\"");
    o.bucket_floats = std::max<size_t>(1, static_cast<size_t>(v * (1 << 20) / sizeof(float)));  // MiB
  }
  if (const char* on = std::getenv("MOEKIT_ALLREDUCE_OVERLAP"); on && *on) {
    const std::string v = on;
    if (v != "0" && v != "1") fail("MOEKIT_ALLREDUCE_OVERLAP", "expected 0 or 1, got \"" + v + "\"");
    o.overlap = v == "1";
  }
  return o;
}

GradientSync::GradientSync(Communicator& comm, ParamList params, std::vector<ParamList> stages, size_t bucket_floats)
    : comm_(comm), bucket_(std::max<size_t>(1, bucket_floats)) {
  // The buffer's order: the stages' trained params in backward order, then any others.
  std::set<const Param*> trained(params.begin(), params.end()), placed;
  for (const ParamList& stage : stages) {
    for (Param* p : stage)
      if (trained.count(p) && placed.insert(p).second) params_.push_back(p);
    stage_end_.push_back(params_.size());
  }
  for (Param* p : params)
    if (placed.insert(p).second) params_.push_back(p);
  if (stage_end_.empty() || stage_end_.back() != params_.size()) stage_end_.push_back(params_.size());
  offset_.push_back(0);
  for (Param* p : params_) offset_.push_back(offset_.back() + static_cast<size_t>(p->grad_buffer().size()));
  if (comm_.size() > 1) flat_.resize(offset_.back());
}

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

void GradientSync::ready_up_to(size_t param_end) {
  for (; ready_ < param_end; ++ready_) {
    Mat& g = params_[ready_]->grad_buffer();
    if (stashed_) g += stash_[ready_];  // the last micro-batch's grads + the earlier ones', as one process sums
    if (!flat_.empty()) std::copy(g.data(), g.data() + g.size(), flat_.data() + offset_[ready_]);
  }
  if (flat_.empty()) return;
  // Buckets are cut every bucket_ values; one starts once all of its values are in.
  const size_t in = offset_[ready_];
  while (started_ < flat_.size()) {
    const size_t end = std::min(flat_.size(), started_ + bucket_);
    if (end > in) break;
    comm_.start_allreduce_sum(flat_.data() + started_, end - started_);
    started_ = end;
  }
}

void GradientSync::stage_done(size_t stage) {
  if (!overlaps()) return;
  const auto start = Clock::now();
  ready_up_to(stage_end_[std::min(stage, stage_end_.size() - 1)]);
  comm_.progress();
  seconds_ += since(start);
}

void GradientSync::finish() {
  if (flat_.empty() && !stashed_) return;  // one process, no accumulation
  const auto start = Clock::now();
  ready_up_to(params_.size());
  stashed_ = false;
  ready_ = 0;
  if (flat_.empty()) return;
  const auto wait_start = Clock::now();
  comm_.wait_all();
  wait_seconds_ += since(wait_start);
  for (size_t i = 0; i < params_.size(); ++i) {
    Mat& g = params_[i]->grad_buffer();
    std::copy(flat_.data() + offset_[i], flat_.data() + offset_[i + 1], g.data());
  }
  started_ = 0;
  seconds_ += since(start);
}

void GradientSync::sum_stats(LossTerms& step, int64_t& tokens) {
  if (comm_.size() == 1) return;
  const auto start = Clock::now();  // blocked time too: it holds any wait for a slower rank's backward
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
  meet_seconds_ += since(start);
  seconds_ += since(start);
}

}  // namespace moekit::distill
