// Dynamic batching (DESIGN.md 2.12): HTTP threads submit tokenised requests to a bounded queue;
// one scheduler thread owns the model (and so the OpenMP pool). Each cycle it takes queued
// requests in arrival order up to max_batch_tokens real tokens and max_batch_requests requests
// (always at least one), and runs them through distill::run_inference, the path `moekit predict`
// uses: sequences sorted by length and cut into forwards of at most max_batch_requests, so little
// compute goes to padding.
// Forming a batch: the clients answered by the last cycle usually send again within a millisecond
// or two, but a cycle that starts at once takes only those that came in during the last forward,
// and under steady load batches then stay at about half the clients (16 of 32 measured; bench
// runs the demo MoE at 56k tokens/s in batches of 10 and 87k in batches of 32). So while fewer requests are queued than the last cycle took,
// the scheduler waits up to batch_wait for them. A lone client (last cycle: one request) never
// waits, so light load keeps its latency.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "io/batching.h"
#include "model/bert.h"
#include "serve/metrics.h"

namespace moekit::serve {

struct SchedulerLimits {
  int64_t max_batch_tokens = 16384;
  int max_batch_requests = 32;
  size_t max_queue = 512;
  std::chrono::microseconds batch_wait{3000};  // 0: never wait
};

class Scheduler {
 public:
  // model and metrics must outlive the scheduler.
  Scheduler(const BertModel& model, SchedulerLimits limits, Metrics& metrics);
  ~Scheduler();  // stop()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues one request; the future gives its logits [inputs, labels] in input order (a per-token
  // head: every input's token logits stacked, [sum of input lengths, labels]), or the
  // model's exception. Throws RequestError 429 when the queue is full, 503 after stop().
  std::future<Mat> submit(std::vector<io::EncodedExample> inputs);
  size_t depth() const;
  // Tests hold the scheduler to fill the queue deterministically; release with false.
  void set_paused(bool paused);
  // Refuses new requests, runs everything queued (pausing ends), joins the thread. Idempotent.
  void stop();

 private:
  struct Job {
    std::vector<io::EncodedExample> inputs;
    std::promise<Mat> result;
  };
  void loop();
  std::vector<Job> take();  // called with mutex_ held, queue non-empty
  void run(std::vector<Job>& jobs);

  const BertModel& model_;
  SchedulerLimits limits_;
  Metrics& metrics_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  bool stopping_ = false, paused_ = false;
  size_t last_cycle_requests_ = 0;  // requests the last cycle took (loop thread only)
  std::thread thread_;
};

}  // namespace moekit::serve
