#include "serve/scheduler.h"

#include <algorithm>
#include <chrono>

#include "distill/evaluate.h"
#include "serve/request_error.h"

namespace moekit::serve {

namespace {
int64_t tokens_of(const std::vector<io::EncodedExample>& inputs) {
  int64_t n = 0;
  for (const auto& e : inputs) n += static_cast<int64_t>(e.ids.size());
  return n;
}
}  // namespace

Scheduler::Scheduler(const BertModel& model, SchedulerLimits limits, Metrics& metrics)
    : model_(model), limits_(limits), metrics_(metrics), thread_([this] { loop(); }) {}

Scheduler::~Scheduler() { stop(); }

std::future<Mat> Scheduler::submit(std::vector<io::EncodedExample> inputs) {
  Job job{std::move(inputs), {}};
  std::future<Mat> f = job.result.get_future();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) throw RequestError(503, "unhealthy", "the server is shutting down");
    if (queue_.size() >= limits_.max_queue)
      throw RequestError(429, "overloaded", "model is overloaded: " + std::to_string(queue_.size()) +
                                                " requests queued (--max-concurrent-requests)");
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
  return f;
}

size_t Scheduler::depth() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
}

void Scheduler::set_paused(bool paused) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    paused_ = paused;
  }
  wake_.notify_one();
}

void Scheduler::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    paused_ = false;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

std::vector<Scheduler::Job> Scheduler::take() {
  std::vector<Job> jobs;
  int64_t tokens = 0;
  while (!queue_.empty() && static_cast<int>(jobs.size()) < limits_.max_batch_requests) {
    const int64_t next = tokens_of(queue_.front().inputs);
    if (!jobs.empty() && tokens + next > limits_.max_batch_tokens) break;
    tokens += next;
    jobs.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return jobs;
}

void Scheduler::loop() {
  for (;;) {
    std::vector<Job> jobs;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return (!queue_.empty() && !paused_) || (stopping_ && queue_.empty()); });
      if (queue_.empty()) return;  // stopping, and everything queued has run
      const size_t expected = std::min(last_cycle_requests_, static_cast<size_t>(limits_.max_batch_requests));
      if (limits_.batch_wait.count() > 0 && queue_.size() < expected) {
        const auto deadline = std::chrono::steady_clock::now() + limits_.batch_wait;
        wake_.wait_until(lock, deadline, [&] {
          if (queue_.size() >= expected || stopping_ || paused_) return true;
          int64_t tokens = 0;  // or a cycle's worth of tokens is already queued
          for (const Job& j : queue_) tokens += tokens_of(j.inputs);
          return tokens >= limits_.max_batch_tokens;
        });
        if (paused_) continue;  // a test holds the queue: wait for it as above
      }
      jobs = take();
      last_cycle_requests_ = jobs.size();
    }
    run(jobs);
  }
}

void Scheduler::run(std::vector<Job>& jobs) {
  std::vector<io::EncodedExample> examples;
  for (const Job& j : jobs) examples.insert(examples.end(), j.inputs.begin(), j.inputs.end());
  distill::InferenceResult r;
  try {
    const auto start = std::chrono::steady_clock::now();
    r = distill::run_inference(model_, examples, static_cast<size_t>(limits_.max_batch_requests));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    metrics_.record_batch(static_cast<int64_t>(examples.size()), r.tokens, seconds, r.expert_tokens);
  } catch (...) {
    for (Job& j : jobs) j.result.set_exception(std::current_exception());
    return;
  }
  const bool per_token = model_.config.per_token_head();
  size_t first = 0;
  for (Job& j : jobs) {
    const size_t n = j.inputs.size();
    if (per_token) {
      const int64_t begin = r.token_offset[first], end = r.token_offset[first + n];
      j.result.set_value(r.token_logits.middleRows(begin, end - begin));
    } else {
      j.result.set_value(r.logits.middleRows(static_cast<Eigen::Index>(first), static_cast<Eigen::Index>(n)));
    }
    first += n;
  }
}

}  // namespace moekit::serve
