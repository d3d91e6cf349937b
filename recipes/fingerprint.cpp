#include "recipes/fingerprint.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "model/error.h"

namespace moekit::recipes {

namespace {

uint64_t mix(uint64_t h) {  // splitmix64 finaliser
  h ^= h >> 30;
  h *= 0xBF58476D1CE4E5B9ULL;
  h ^= h >> 27;
  h *= 0x94D049BB133111EBULL;
  return h ^ (h >> 31);
}

std::vector<fs::path> files_of(const fs::path& path) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    for (const auto& e : fs::directory_iterator(path, ec))
      if (e.is_regular_file(ec)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(path);
  }
  return files;
}

std::string hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

uint64_t hash_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot read file");
  std::vector<char> buf(1 << 20);
  uint64_t h = 0x9E3779B97F4A7C15ULL, total = 0;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const size_t n = static_cast<size_t>(in.gcount());
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {  // one multiply-rotate per word: hashing runs near disk speed
      uint64_t w;
      std::memcpy(&w, buf.data() + i, 8);
      const uint64_t x = h ^ (w * 0x9E3779B97F4A7C15ULL);
      h = ((x << 27) | (x >> 37)) * 0xC2B2AE3D27D4EB4FULL;
    }
    for (; i < n; ++i) h = (h ^ static_cast<unsigned char>(buf[i])) * 0x100000001B3ULL;
    total += n;
  }
  return mix(h ^ total);
}

nlohmann::json fingerprint(const std::vector<fs::path>& paths, const nlohmann::json& previous) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& path : paths) {
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      out[path.string()] = {{"missing", true}};
      continue;
    }
    for (const auto& file : files_of(path)) {
      const std::string key = file.string();
      const uint64_t size = fs::file_size(file, ec);
      const int64_t mtime = fs::last_write_time(file, ec).time_since_epoch().count();
      std::string hash;
      if (previous.is_object() && previous.contains(key)) {
        const auto& p = previous[key];
        if (p.value("size", uint64_t{0}) == size && p.value("mtime", int64_t{0}) == mtime) hash = p.value("hash", "");
      }
      if (hash.empty()) hash = hex(hash_file(file));
      out[key] = {{"size", size}, {"mtime", mtime}, {"hash", hash}};
    }
  }
  return out;
}

bool same_content(const nlohmann::json& a, const nlohmann::json& b, std::string* what) {
  auto differ = [&](const std::string& file) {
    if (what) *what = file;
    return false;
  };
  if (!a.is_object() || !b.is_object()) return differ("");
  for (const auto& [key, v] : a.items()) {
    if (!b.contains(key) || v.contains("missing") || b[key].contains("missing")) return differ(key);
    if (v.value("hash", "") != b[key].value("hash", "")) return differ(key);
  }
  for (const auto& [key, v] : b.items())
    if (!a.contains(key)) return differ(key);
  return true;
}

uint64_t path_bytes(const fs::path& path) {
  uint64_t n = 0;
  std::error_code ec;
  if (!fs::exists(path, ec)) return 0;
  for (const auto& f : files_of(path)) n += fs::file_size(f, ec);
  return n;
}

}  // namespace moekit::recipes
