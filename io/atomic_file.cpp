#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "model/error.h"

namespace moekit::io {

namespace {

std::string errno_text() { return std::strerror(errno); }

// fsync by name: ofstream hides its descriptor, and fsync on a read-only descriptor flushes the
// file's data all the same on Linux.
bool fsync_path(const fs::path& p, bool directory) {
  const int fd = ::open(p.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

fs::path parent_or_dot(const fs::path& p) {
  const fs::path parent = p.parent_path();
  return parent.empty() ? fs::path(".") : parent;
}

}  // namespace

fs::path temp_sibling(const fs::path& path) {
  static std::atomic<unsigned long> counter{0};
  const std::string name = "." + path.filename().string() + ".tmp." + std::to_string(::getpid()) + "." +
                           std::to_string(counter.fetch_add(1));
  return path.parent_path() / name;
}

void write_path_atomic(const fs::path& path, const std::function<void(const fs::path& tmp)>& write) {
  const fs::path tmp = temp_sibling(path);
  try {
    write(tmp);
    if (!fsync_path(tmp, false)) fail(path, "fsync failed: " + errno_text());
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) fail(path, "cannot rename temporary file into place: " + ec.message());
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
  fsync_path(parent_or_dot(path), true);  // makes the rename durable; best effort
}

void write_file_atomic(const fs::path& path, const std::function<void(std::ostream&)>& writer) {
  write_path_atomic(path, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail(path, "cannot create temporary file " + tmp.string() + ": " + errno_text());
    writer(out);
    out.flush();
    if (!out) fail(path, "write failed (disk full?)");
    out.close();
    if (out.fail()) fail(path, "write failed while closing the temporary file");
  });
}

void write_text_atomic(const fs::path& path, const std::string& text) {
  write_file_atomic(path, [&](std::ostream& out) { out.write(text.data(), std::streamsize(text.size())); });
}

void commit_directory(const fs::path& tmp_dir, const fs::path& final_dir) {
  std::error_code ec;
  check(fs::is_directory(tmp_dir, ec), tmp_dir, "cannot commit: not a directory");
  fs::path old;
  if (fs::exists(fs::symlink_status(final_dir, ec))) {
    old = temp_sibling(final_dir);
    fs::rename(final_dir, old, ec);
    if (ec) fail(final_dir, "cannot move the old directory aside: " + ec.message());
  }
  fs::rename(tmp_dir, final_dir, ec);
  if (ec) {
    const std::string why = ec.message();
    if (!old.empty()) fs::rename(old, final_dir, ec);  // put the old one back
    fail(final_dir, "cannot rename " + tmp_dir.string() + " into place: " + why);
  }
  fsync_path(parent_or_dot(final_dir), true);
  if (!old.empty()) fs::remove_all(old, ec);  // the commit stands even if cleanup fails
}

}  // namespace moekit::io
