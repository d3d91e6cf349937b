// The list of pipeline subcommands, once: main builds its app from it and `moekit run` checks
// each recipe step against the same options (CLI11 parses the step as a command line).
#include "cli/commands.h"

namespace moekit::cli {

void register_commands(CLI::App& app) {
  register_init(app);
  register_inspect(app);
  register_predict(app);
  register_eval(app);
  register_pretrain(app);
  register_train(app);
  register_bench(app);
  register_importance(app);
  register_moefy(app);
  register_distill(app);
  register_export(app);
  register_serve(app);
  register_tokenize(app);
  register_onnx_check(app);
}

}  // namespace moekit::cli
