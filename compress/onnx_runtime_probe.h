// Where ONNX Runtime runs for moekit's checks (`moekit onnx-check` and the ONNX tests): Node.js
// with the npm package onnxruntime-node installed under one npm prefix by tests/install_deps.sh.
#pragma once
#include <string>

namespace moekit::compress {

// The npm prefix: $MOEKIT_NPM_DIR, else ~/.cache/moekit-npm.
std::string onnx_runtime_npm_dir();
// Empty when node and onnxruntime-node are both here; else what is missing, as one line.
std::string onnx_runtime_missing();

}  // namespace moekit::compress
