// Scratch directories for tests: all under one per-process root that is removed at exit, so a
// test run leaves nothing behind in /tmp.
#pragma once
#include <filesystem>
#include <string>

namespace moekit::test {

// A fresh, empty directory named `name` under the process's scratch root.
std::filesystem::path scratch_dir(const std::string& name);
// scratch_dir(prefix + "_" + a per-process counter): a new directory on every call.
std::filesystem::path unique_scratch_dir(const std::string& prefix);

}  // namespace moekit::test
