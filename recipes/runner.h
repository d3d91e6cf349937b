// Runs a checked plan step by step, each `moekit` step as a child process of this binary.
// Resumable: a finished step leaves workdir/.stamps/NN-<name>.json (its command lines, input and
// output fingerprints); a re-run skips it while the stamp matches, redoes it when its options or
// inputs changed, and redoes every later step that reads its outputs. An interrupted train or
// distill step continues from its last checkpoint (--resume). Keeps run.log and summary.json.
#pragma once
#include <filesystem>
#include <ostream>
#include <string>

#include "recipes/plan.h"

namespace moekit::recipes {

struct RunOptions {
  std::string from, only;  // step selectors (name, kind or 1-based number); empty = none
  bool dry_run = false;    // print the plan, run and write nothing
  int threads = 0;         // > 0: every moekit step gets --threads N
  fs::path exe = "/proc/self/exe";
};

// The step a --from/--only value names (its name, its kind if unique, or its 1-based number).
size_t find_step_index(const Plan& plan, const std::string& selector, const std::string& option);

// Shell-like rendering of a command line, for logs and the dry run.
std::string render(const std::vector<std::string>& argv);

// Throws Error(step's file:line, ...) when a step fails; summary.json then marks it failed.
void run_plan(const Plan& plan, const RunOptions& options, std::ostream& out);

}  // namespace moekit::recipes
