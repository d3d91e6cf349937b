// Binds an options struct's visit() table to CLI11 flags: --key, default shown in --help.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

namespace moekit::cli {

struct CliBinder {
  CLI::App* cmd;

  template <class T>
  void operator()(const char* key, T& member, const char* help, bool required) {
    CLI::Option* opt = cmd->add_option(std::string("--") + key, member, help);
    // A repeated flag overrides the earlier one (scripts append overrides to base arguments).
    opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    if (required)
      opt->required();
    else
      opt->capture_default_str();
  }
  // A bool is a flag: --key turns it on (a recipe writes key: true).
  void operator()(const char* key, bool& member, const char* help, bool /*required*/) {
    cmd->add_flag(std::string("--") + key, member, help);
  }
};

template <class Options>
void bind_options(CLI::App* cmd, Options& options) {
  CliBinder binder{cmd};
  options.visit(binder);
}

}  // namespace moekit::cli
