// Each subcommand registers itself on the app; main owns the single catch.
#pragma once
#include <CLI/CLI.hpp>

namespace moekit::cli {

void register_init(CLI::App& app);
void register_inspect(CLI::App& app);
void register_predict(CLI::App& app);
void register_eval(CLI::App& app);
void register_train(CLI::App& app);
void register_bench(CLI::App& app);
void register_importance(CLI::App& app);
void register_moefy(CLI::App& app);
void register_distill(CLI::App& app);
void register_export(CLI::App& app);
void register_serve(CLI::App& app);
void register_pretrain(CLI::App& app);
void register_run(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_onnx_check(CLI::App& app);

// Every pipeline subcommand (all of the above but run), in cli/commands.cpp: main and the recipe
// runner build the same app from it, so a recipe step takes exactly its command's options.
// A new command goes there, not in main.cpp.
void register_commands(CLI::App& app);

}  // namespace moekit::cli
