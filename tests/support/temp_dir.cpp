#include "tests/support/temp_dir.h"

#include <unistd.h>

#include <atomic>

namespace moekit::test {

namespace fs = std::filesystem;

namespace {
struct ScratchRoot {
  fs::path path = fs::temp_directory_path() / ("moekit_test_" + std::to_string(::getpid()));
  ~ScratchRoot() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};
}  // namespace

fs::path scratch_dir(const std::string& name) {
  static ScratchRoot root;
  const fs::path d = root.path / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

fs::path unique_scratch_dir(const std::string& prefix) {
  static std::atomic<unsigned> counter{0};
  return scratch_dir(prefix + "_" + std::to_string(counter.fetch_add(1)));
}

}  // namespace moekit::test
