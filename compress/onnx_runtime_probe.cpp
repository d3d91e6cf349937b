#include "compress/onnx_runtime_probe.h"

#include <cstdlib>
#include <filesystem>

namespace moekit::compress {

std::string onnx_runtime_npm_dir() {
  if (const char* env = std::getenv("MOEKIT_NPM_DIR")) return env;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "/nonexistent") + "/.cache/moekit-npm";
}

std::string onnx_runtime_missing() {
  if (std::system("command -v node >/dev/null 2>&1") != 0) return "node (Node.js) not found on PATH";
  if (!std::filesystem::exists(onnx_runtime_npm_dir() + "/node_modules/onnxruntime-node"))
    return "onnxruntime-node is not installed in " + onnx_runtime_npm_dir() +
           " (tests/install_deps.sh installs it; MOEKIT_NPM_DIR names another npm prefix)";
  return "";
}

}  // namespace moekit::compress
