#!/usr/bin/env bash
# Installs moekit's build and test dependencies from Debian's packages (no other downloads).
set -euo pipefail
packages=(build-essential cmake pkg-config libeigen3-dev libhdf5-dev libcli11-dev catch2 nlohmann-json3-dev
          libyaml-cpp-dev libutf8proc-dev libxxhash-dev fortunes
          clang libclang-rt-14-dev libomp-dev)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo_cmd apt-get update -qq
$sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
