// Fingerprints of the files a step reads and writes, for its stamp: size, mtime and a content
// hash per file (a directory counts by its top-level files: a model directory, not checkpoints/).
// Content decides; size+mtime only let an unchanged file skip rehashing, so a re-run of a
// finished recipe reads nothing big.
#pragma once
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace moekit::recipes {

namespace fs = std::filesystem;

// 64-bit content hash of a file (not cryptographic: it detects edits, not attacks).
uint64_t hash_file(const fs::path& path);

// {"<file>": {"size", "mtime", "hash"}} for every file under `paths`; a missing path maps to
// {"missing": true}. Entries of `previous` whose size and mtime still match lend their hash.
nlohmann::json fingerprint(const std::vector<fs::path>& paths, const nlohmann::json& previous = nullptr);

// Same files with the same content hashes (mtimes ignored). On a difference, `what` names the
// first differing file.
bool same_content(const nlohmann::json& a, const nlohmann::json& b, std::string* what = nullptr);

// Total bytes of a file, or of a directory's top-level files.
uint64_t path_bytes(const fs::path& path);

}  // namespace moekit::recipes
