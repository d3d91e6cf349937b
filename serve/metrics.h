// Server counters, rendered as Prometheus text (GET /metrics). Thread-safe.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace moekit::serve {

class Metrics {
 public:
  void record_request(const std::string& route, int status, double seconds);
  // One scheduler cycle: sequences and real tokens in it, compute seconds, and per MoE layer the
  // tokens routed to each expert ({} for dense layers).
  void record_batch(int64_t sequences, int64_t tokens, double seconds,
                    const std::vector<std::vector<int64_t>>& expert_tokens);
  std::string render(size_t queue_depth) const;

  static constexpr std::array<double, 12> kLatencyBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                             0.1,   0.25,   0.5,   1.0,  2.5,   10.0};
  static constexpr std::array<double, 9> kBatchBuckets = {1, 2, 4, 8, 16, 32, 64, 128, 256};

 private:
  struct Histogram {
    std::vector<uint64_t> counts;  // per bucket (not cumulative), last = +Inf
    double sum = 0;
    uint64_t total = 0;
  };
  static void observe(Histogram& h, const double* bounds, size_t n, double value);
  static void render_histogram(std::string& out, const std::string& name, const Histogram& h, const double* bounds,
                               size_t n);

  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // (route, status) -> count
  Histogram latency_, batch_sizes_;
  uint64_t tokens_ = 0;
  double compute_seconds_ = 0;
  std::vector<std::vector<int64_t>> expert_tokens_;
};

}  // namespace moekit::serve
