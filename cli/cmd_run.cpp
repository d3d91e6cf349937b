// moekit run: a recipe (YAML) of the other commands, checked whole before it starts, resumable,
// ending in a report. Steps are checked against the commands' own CLI11 options (register_commands).
#include <omp.h>

#include <iostream>

#include "cli/commands.h"
#include "recipes/plan.h"
#include "recipes/recipe.h"
#include "recipes/runner.h"

namespace moekit::cli {

namespace {

struct RunCliOptions {
  std::string recipe, from, only;
  std::vector<std::string> sets;
  bool dry_run = false;
};

void run_recipe(const RunCliOptions& o) {
  if (!o.from.empty() && !o.only.empty()) throw CLI::ValidationError("--from and --only exclude each other");
  const recipes::Recipe recipe = recipes::load_recipe(o.recipe, o.sets);
  const recipes::Plan plan = recipes::make_plan(recipe, register_commands);
  recipes::RunOptions ro;
  ro.from = o.from;
  ro.only = o.only;
  ro.dry_run = o.dry_run;
  ro.threads = omp_get_max_threads();  // main applied --threads: every step runs with the same count
  recipes::run_plan(plan, ro, std::cout);
}

}  // namespace

void register_run(CLI::App& app) {
  auto o = std::make_shared<RunCliOptions>();
  CLI::App* cmd = app.add_subcommand("run", "Run a recipe: the pipeline's steps from a YAML file, resumable");
  cmd->add_option("recipe", o->recipe, "recipe file (see recipes/demo.yaml)")->required();
  cmd->add_option("--from", o->from, "rerun from this step (name, kind or number) on; earlier steps must have run");
  cmd->add_option("--only", o->only, "run only this step (forced)");
  cmd->add_flag("--dry-run", o->dry_run, "check the recipe and print what would run, run nothing");
  cmd->add_option("--set", o->sets, "override a var or a step option: NAME=VALUE or STEP.KEY=VALUE (repeatable)");
  cmd->callback([o] { run_recipe(*o); });
}

}  // namespace moekit::cli
