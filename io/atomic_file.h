// Crash-safe writes (STYLE 2.5): a reader sees the old file or the complete new one, never a
// torn one. Files: temp sibling, flush, fsync, rename. Directories: built under a temp name,
// then swapped in with two renames.
#pragma once
#include <filesystem>
#include <functional>
#include <ostream>
#include <string>

namespace moekit::io {

namespace fs = std::filesystem;

// A fresh name in the same directory as `path` (same filesystem, so rename is atomic):
// ".<name>.tmp.<pid>.<counter>". Nothing is created.
fs::path temp_sibling(const fs::path& path);

// Calls write(tmp) to create a temp sibling by name (e.g. an HDF5 file), then fsyncs and renames
// it onto `path`. If write throws, the temp file is removed and `path` is untouched.
void write_path_atomic(const fs::path& path, const std::function<void(const fs::path& tmp)>& write);
// write_path_atomic with a binary stream to the temp file; a failed stream is an error too.
void write_file_atomic(const fs::path& path, const std::function<void(std::ostream&)>& writer);
void write_text_atomic(const fs::path& path, const std::string& text);

// Replaces final_dir by tmp_dir: the old final_dir is renamed away, tmp_dir renamed in, the old
// one removed. final_dir need not exist. Only the instant between the renames lacks final_dir.
void commit_directory(const fs::path& tmp_dir, const fs::path& final_dir);

}  // namespace moekit::io
