// What a recipe run does: every step as `moekit` command lines with the files it reads and writes,
// resolved and checked against the CLI's own option table (the CLI11 app main builds) before
// anything runs. Errors carry the recipe's file:line.
#pragma once
#include <CLI/CLI.hpp>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "recipes/recipe.h"

namespace moekit::recipes {

// One process. argv[0] "moekit" means this binary itself.
struct Command {
  std::vector<std::string> argv;
  fs::path cwd;            // empty = the runner's
  std::string capture_as;  // non-empty: stdout is JSON, saved under this key of the step's JSON file
  std::string label;       // eval: the model as the recipe names it
  // Data-parallel steps: the MPI launcher's argv that starts `moekit` (e.g. mpirun -np 4), from the
  // step's `launcher:` or MOEKIT_LAUNCHER; empty = run moekit directly. Not part of the step's
  // identity: the result is the same up to float round-off.
  std::vector<std::string> launcher;
};

// launcher + argv with argv[0] ("moekit") replaced by `exe`: the process the runner starts.
std::vector<std::string> launched_argv(const Command& c, const std::string& exe);

struct PlannedStep {
  std::string name, kind;  // kind: a moekit command, "prepare" or "report"
  Loc loc;
  std::vector<Command> commands;
  std::vector<fs::path> inputs, outputs;  // absolute; dirs count by their top-level files
  std::vector<std::string> model_names;   // eval/bench: models as named in the recipe
  std::vector<fs::path> model_paths;
  fs::path capture;        // eval/bench: workdir/<name>.json
  bool resumable = false;  // train/distill: an interrupted run continues with --resume
  fs::path generated;      // inline init: config.json the runner writes before the step
  std::string generated_text;
  std::string title;  // report
};

struct Plan {
  std::string name;
  fs::path recipe, workdir;
  std::vector<PlannedStep> steps;
};

// Registers moekit's subcommands on an app (cli::register_commands): the one option table.
using AppBuilder = std::function<void(CLI::App&)>;

// Resolves and validates the whole recipe. Never runs or writes anything.
Plan make_plan(const Recipe& recipe, const AppBuilder& build_app);

}  // namespace moekit::recipes
