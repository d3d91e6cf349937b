// WorkdirLock: one `moekit run` per work directory; a lock whose holder is gone is taken over.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <optional>

#include "model/error.h"
#include "recipes/workdir_lock.h"
#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;
using moekit::recipes::WorkdirLock;

namespace {
std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
}  // namespace

TEST_CASE("a second lock on a held work directory names the holder's pid", "[recipes][lock]") {
  const fs::path work = moekit::test::scratch_dir("lock_held") / "work";
  std::optional<WorkdirLock> first(std::in_place, work);  // creates the directory
  CHECK(read_all(work / ".lock") == std::to_string(getpid()) + "\n");
  // flock locks belong to an open file: a second open in this process conflicts like another run.
  const std::string expected = "another moekit run (pid " + std::to_string(getpid()) + ") is using " + work.string();
  CHECK_THROWS_WITH(WorkdirLock(work), expected);
  first.reset();  // the holder ends: the lock is free again
  CHECK_NOTHROW(WorkdirLock(work));
}

TEST_CASE("a stale lock file left by a killed run is taken over", "[recipes][lock]") {
  const fs::path work = moekit::test::scratch_dir("lock_stale");
  std::ofstream(work / ".lock") << "999999\n";  // no process holds a flock on it
  WorkdirLock lock(work);
  CHECK(read_all(work / ".lock") == std::to_string(getpid()) + "\n");
}
