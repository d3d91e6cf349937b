#!/usr/bin/env bash
# Installs moekit's build and test dependencies from Debian's packages, and onnxruntime-node and
# tokenizers from npm (test references; nothing else is downloaded).
set -euo pipefail
packages=(build-essential cmake pkg-config libeigen3-dev libhdf5-dev libcli11-dev catch2 nlohmann-json3-dev
          libyaml-cpp-dev libutf8proc-dev libdnnl-dev libxxhash-dev fortunes libcpp-httplib-dev curl libonnx-dev libprotobuf-dev
          protobuf-compiler wordnet-base libopenmpi-dev openmpi-bin
          clang libclang-rt-14-dev libomp-dev)
# Node.js only where the machine has none: an image's own Node.js conflicts with Debian's package.
command -v node >/dev/null || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# npm references for tests (independent implementations; those tests skip without Node.js):
# onnxruntime-node for the ONNX export tests, tokenizers (the Node.js binding of Hugging Face's Rust
# tokenizers, its prebuilt linux-x64 binary inside the package) for tokenizer parity.
# --ignore-scripts: onnxruntime-node's install script only fetches GPU providers; the CPU build ships in it.
install_npm() {
  local dir=${MOEKIT_NPM_DIR:-$HOME/.cache/moekit-npm}
  command -v npm >/dev/null || return 0
  mkdir -p "$dir"
  local spec name
  for spec in onnxruntime-node@1.30.0 tokenizers@0.23.2; do
    name=${spec%@*}
    [ -d "$dir/node_modules/$name" ] && continue
    npm install --prefix "$dir" --no-audit --no-fund --ignore-scripts "$spec" >/dev/null ||
      echo "install_deps: npm install $spec failed; the tests that use it will skip" >&2
  done
}
if [ ${#missing[@]} -eq 0 ]; then install_npm; exit 0; fi
sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo_cmd apt-get update -qq
$sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
install_npm
