#include "recipes/workdir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "model/error.h"

namespace moekit::recipes {

namespace fs = std::filesystem;

WorkdirLock::WorkdirLock(const fs::path& workdir) {
  fs::create_directories(workdir);
  const fs::path path = workdir / ".lock";
  // O_CLOEXEC: the step processes must not inherit the lock (it would outlive a killed run).
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(path, std::string("cannot open the work directory lock: ") + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[32] = {};
    const ssize_t got = ::pread(fd_, buf, sizeof buf - 1, 0);
    ::close(fd_);
    fd_ = -1;
    if (err != EWOULDBLOCK) fail(path, std::string("cannot lock: ") + std::strerror(err));
    std::string pid = got > 0 ? std::string(buf, size_t(got)) : "";
    pid.erase(pid.find_last_not_of(" \n") + 1);
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) pid = "unknown";
    fail("", "another moekit run (pid " + pid + ") is using " + workdir.string());
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != ssize_t(pid.size()))
    fail(path, std::string("cannot write the lock's pid: ") + std::strerror(errno));
}

WorkdirLock::~WorkdirLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock; the file stays (a stale pid is harmless)
}

}  // namespace moekit::recipes
