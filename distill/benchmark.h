// Throughput of models on synthetic full-length batches: inference (eval mode, no cache) or one
// training step (forward + backward + AdamW). Models run alternately, after warm-up, so machine
// noise hits all of them alike. Inference also times a batch of one sequence (the latency a single
// request sees; MoEBERT's sentence gate runs one expert there). Prints nothing; the CLI formats the rows.
#pragma once
#include <string>
#include <vector>

#include "model/bert.h"

namespace moekit::distill {

struct BenchOptions {
  int batch_size = 32;
  int seq_len = 128;
  int warmup = 2;
  int reps = 5;
  bool train = false;
  uint64_t seed = 0;
};

struct BenchRow {
  std::string name;
  double tokens_per_second = 0;  // median over reps
  double tokens_per_second_min = 0, tokens_per_second_max = 0;
  double latency_ms = 0;         // median time per batch
  double gflops = 0;             // matrix-product GFLOP/s at the median (forward_flops_per_token)
  double batch1_latency_ms = 0;  // inference: median time of one sequence of seq_len alone (0 with train)
};

// Multiply-add FLOPs (2 per multiply-add) of the matrix products of one forward, per token, at
// `seq` tokens per sequence: attention projections and scores, the FFN or the experts a token
// runs (top_k of them) and a gate router. A training step counts 3x (forward, two backward products).
double forward_flops_per_token(const BertConfig& config, int64_t seq);

// Every model must accept seq_len positions. Throws Error if a model produces non-finite logits.
std::vector<BenchRow> run_benchmark(const std::vector<BertModel*>& models, const std::vector<std::string>& names,
                                    const BenchOptions& options);

// Peak resident memory of this process so far, in bytes.
uint64_t peak_rss_bytes();

}  // namespace moekit::distill
