#include "serve/metrics.h"

#include <cstdio>

namespace moekit::serve {

namespace {
std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}
}  // namespace

void Metrics::observe(Histogram& h, const double* bounds, size_t n, double value) {
  if (h.counts.empty()) h.counts.assign(n + 1, 0);
  size_t b = 0;
  while (b < n && value > bounds[b]) ++b;
  ++h.counts[b];
  h.sum += value;
  ++h.total;
}

void Metrics::record_request(const std::string& route, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{route, status}];
  if (route == "/predict" && status == 200)
    observe(latency_, kLatencyBuckets.data(), kLatencyBuckets.size(), seconds);
}

void Metrics::record_batch(int64_t sequences, int64_t tokens, double seconds,
                           const std::vector<std::vector<int64_t>>& expert_tokens) {
  std::lock_guard<std::mutex> lock(mutex_);
  observe(batch_sizes_, kBatchBuckets.data(), kBatchBuckets.size(), static_cast<double>(sequences));
  tokens_ += static_cast<uint64_t>(tokens);
  compute_seconds_ += seconds;
  if (expert_tokens_.size() < expert_tokens.size()) expert_tokens_.resize(expert_tokens.size());
  for (size_t l = 0; l < expert_tokens.size(); ++l) {
    auto& sum = expert_tokens_[l];
    if (sum.size() < expert_tokens[l].size()) sum.resize(expert_tokens[l].size(), 0);
    for (size_t e = 0; e < expert_tokens[l].size(); ++e) sum[e] += expert_tokens[l][e];
  }
}

void Metrics::render_histogram(std::string& out, const std::string& name, const Histogram& h, const double* bounds,
                               size_t n) {
  uint64_t cumulative = 0;
  for (size_t b = 0; b <= n; ++b) {
    cumulative += h.counts.empty() ? 0 : h.counts[b];
    out += name + "_bucket{le=\"" + (b < n ? num(bounds[b]) : "+Inf") + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_sum " + num(h.sum) + "\n" + name + "_count " + std::to_string(h.total) + "\n";
}

std::string Metrics::render(size_t queue_depth) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  out += "# HELP moekit_requests_total HTTP requests by route and status.\n# TYPE moekit_requests_total counter\n";
  for (const auto& [key, count] : requests_)
    out += "moekit_requests_total{route=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"} " +
           std::to_string(count) + "\n";
  out += "# HELP moekit_queue_depth Requests waiting for the scheduler.\n# TYPE moekit_queue_depth gauge\n";
  out += "moekit_queue_depth " + std::to_string(queue_depth) + "\n";
  out += "# HELP moekit_request_duration_seconds Latency of successful /predict requests.\n"
         "# TYPE moekit_request_duration_seconds histogram\n";
  render_histogram(out, "moekit_request_duration_seconds", latency_, kLatencyBuckets.data(), kLatencyBuckets.size());
  out += "# HELP moekit_batch_size Sequences per scheduler cycle.\n# TYPE moekit_batch_size histogram\n";
  render_histogram(out, "moekit_batch_size", batch_sizes_, kBatchBuckets.data(), kBatchBuckets.size());
  out += "# HELP moekit_tokens_total Real (unpadded) tokens run through the model.\n# TYPE moekit_tokens_total counter\n";
  out += "moekit_tokens_total " + std::to_string(tokens_) + "\n";
  out += "# HELP moekit_compute_seconds_total Wall time of the forward passes.\n"
         "# TYPE moekit_compute_seconds_total counter\n";
  out += "moekit_compute_seconds_total " + num(compute_seconds_) + "\n";
  out += "# HELP moekit_tokens_per_second Tokens per second of compute time so far.\n"
         "# TYPE moekit_tokens_per_second gauge\n";
  out += "moekit_tokens_per_second " + num(compute_seconds_ > 0 ? static_cast<double>(tokens_) / compute_seconds_ : 0) +
         "\n";
  out += "# HELP moekit_expert_tokens_total Tokens routed to each expert of each MoE layer.\n"
         "# TYPE moekit_expert_tokens_total counter\n";
  for (size_t l = 0; l < expert_tokens_.size(); ++l)
    for (size_t e = 0; e < expert_tokens_[l].size(); ++e)
      out += "moekit_expert_tokens_total{layer=\"" + std::to_string(l) + "\",expert=\"" + std::to_string(e) + "\"} " +
             std::to_string(expert_tokens_[l][e]) + "\n";
  return out;
}

}  // namespace moekit::serve
