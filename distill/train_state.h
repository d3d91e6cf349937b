// Resumable training checkpoints (llm.c's save_state, DONE marker last):
//   OUT/checkpoints/step-NNNNNNNN/{params.safetensors, optimizer.safetensors, state.json, DONE}
// written under a temporary name and renamed, so a checkpoint directory exists only complete.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "distill/adamw.h"
#include "model/param.h"

namespace moekit::distill {

struct TrainState {
  int64_t step = 0;     // optimizer steps done
  int64_t epoch = 0;    // epoch of the next micro-batch
  int64_t cursor = 0;   // index of the next micro-batch within that epoch
  double best_metric = -1;
  int64_t best_step = -1;
  nlohmann::json options;  // the options that shaped the run (checked on resume)
};

// Writes a checkpoint of `params` (values), the optimizer moments and the state; keeps only the
// newest `keep` checkpoints.
void save_checkpoint(const std::filesystem::path& out, const ParamList& params, AdamW& adam, const TrainState& state,
                     int keep = 1);

// Finds the newest complete checkpoint under out/checkpoints; nullopt when there is none.
std::optional<std::filesystem::path> latest_checkpoint(const std::filesystem::path& out);

// Restores params, moments and state from a checkpoint directory. Every name must match.
TrainState load_checkpoint(const std::filesystem::path& dir, const ParamList& params, AdamW& adam);

}  // namespace moekit::distill
