// One `moekit run` per work directory: an exclusive flock on WORKDIR/.lock, held while the run
// lives, with the holder's pid written inside for the message a second run prints. The kernel
// drops a flock when its holder exits or is killed, so a lock left by a killed run is simply
// taken over (the stale pid in the file is overwritten).
#pragma once
#include <filesystem>

namespace moekit::recipes {

class WorkdirLock {
 public:
  // Creates the directory if needed. Throws "another moekit run (pid N) is using WORKDIR" when held.
  explicit WorkdirLock(const std::filesystem::path& workdir);
  ~WorkdirLock();
  WorkdirLock(const WorkdirLock&) = delete;
  WorkdirLock& operator=(const WorkdirLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace moekit::recipes
