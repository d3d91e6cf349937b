#!/usr/bin/env bash
# Installs moekit's build and test dependencies from Debian's packages, and onnxruntime-node from npm
# (the ONNX export tests' reference; nothing else is downloaded).
set -euo pipefail
packages=(build-essential cmake pkg-config libeigen3-dev libhdf5-dev libcli11-dev catch2 nlohmann-json3-dev
          libyaml-cpp-dev libutf8proc-dev libdnnl-dev libxxhash-dev fortunes libcpp-httplib-dev curl libonnx-dev libprotobuf-dev
          protobuf-compiler wordnet-base libopenmpi-dev openmpi-bin
          clang libclang-rt-14-dev libomp-dev)
# Node.js only where the machine has none: an image's own Node.js conflicts with Debian's package.
command -v node >/dev/null || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# ONNX Runtime for the ONNX export tests (an independent reference; they skip without Node.js).
# --ignore-scripts: the package's install script only fetches GPU providers; the CPU build ships in it.
install_ort() {
  local dir=${MOEKIT_NPM_DIR:-$HOME/.cache/moekit-npm}
  [ -d "$dir/node_modules/onnxruntime-node" ] && return 0
  command -v npm >/dev/null || return 0
  mkdir -p "$dir" && npm install --prefix "$dir" --no-audit --no-fund --ignore-scripts onnxruntime-node@1.30.0 >/dev/null ||
    echo "install_deps: npm install onnxruntime-node failed; the ONNX Runtime tests will skip" >&2
}
if [ ${#missing[@]} -eq 0 ]; then install_ort; exit 0; fi
sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo_cmd apt-get update -qq
$sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
install_ort
