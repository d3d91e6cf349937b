#include "io/h5_checksum.h"

#include <xxhash.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "model/error.h"

namespace moekit::io {

namespace fs = std::filesystem;

namespace {

constexpr char kHdf5Signature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};

struct Digest {
  XXH128_hash_t hash;
  uint64_t length = 0;
};

// Hash of every byte from `offset` to the end of `in`.
Digest hash_from(std::istream& in, uint64_t offset, const fs::path& path) {
  XXH3_state_t* state = XXH3_createState();
  check(state != nullptr, path, "cannot allocate the checksum state");
  XXH3_128bits_reset(state);
  in.clear();
  in.seekg(std::streamoff(offset));
  std::vector<char> buf(1 << 20);
  Digest d;
  while (in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    const auto got = in.gcount();
    if (got <= 0) break;
    XXH3_128bits_update(state, buf.data(), size_t(got));
    d.length += uint64_t(got);
  }
  const bool bad = in.bad();
  d.hash = XXH3_128bits_digest(state);
  XXH3_freeState(state);
  check(!bad, path, "read error while checking the checksum");
  return d;
}

std::string header_line(const Digest& d) {
  char line[128];
  std::snprintf(line, sizeof line, "moekit-hdf5-checksum v1 xxh3-128 %016" PRIx64 "%016" PRIx64 " length %020" PRIu64 "\n",
                uint64_t(d.hash.high64), uint64_t(d.hash.low64), d.length);
  return line;
}

[[noreturn]] void corrupt(const fs::path& path, const std::string& why) {
  fail(path, "file is corrupt or truncated (checksum: " + why + ")");
}

}  // namespace

void seal_hdf5_checksum(const fs::path& path) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  check(static_cast<bool>(f), path, "cannot reopen to write its checksum");
  const Digest d = hash_from(f, kChecksumBlockBytes, path);
  std::string block = header_line(d);
  block.resize(kChecksumBlockBytes, '\0');
  f.clear();
  f.seekp(0);
  f.write(block.data(), std::streamsize(block.size()));
  f.flush();
  check(static_cast<bool>(f), path, "cannot write the checksum block");
}

Integrity verify_hdf5_checksum(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  check(static_cast<bool>(in), path, "cannot open file");
  std::string block(kChecksumBlockBytes, '\0');
  in.read(block.data(), std::streamsize(block.size()));
  const auto got = size_t(in.gcount());
  if (got >= 8 && std::memcmp(block.data(), kHdf5Signature, 8) == 0) return Integrity::unverified;
  if (got < kChecksumBlockBytes) corrupt(path, "the file is shorter than its checksum block");
  const size_t eol = block.find('\n');
  if (block.compare(0, 21, "moekit-hdf5-checksum ") != 0 || eol == std::string::npos)
    corrupt(path, "no checksum block; not a file written by moekit?");
  if (block.compare(0, 24, "moekit-hdf5-checksum v1 ") != 0)
    fail(path, "written by a newer moekit (checksum block \"" + block.substr(0, std::min<size_t>(eol, 40)) +
                   "\"); upgrade moekit");
  for (size_t i = eol + 1; i < block.size(); ++i)
    if (block[i] != '\0') corrupt(path, "damaged checksum block (byte " + std::to_string(i) + ")");
  const Digest d = hash_from(in, kChecksumBlockBytes, path);
  const std::string expected = header_line(d);
  const std::string stored = block.substr(0, eol + 1);
  if (stored == expected) return Integrity::verified;
  // Say which part differs: the length (truncated or extended file) or the hash (damaged bytes).
  const size_t length_at = expected.find(" length ");
  if (stored.size() != expected.size() || stored.compare(length_at, std::string::npos, expected, length_at) != 0)
    corrupt(path, "the file is truncated or extended, or its checksum block is damaged");
  corrupt(path, "hash mismatch");
}

std::string unverified_warning(const fs::path& path) {
  return path.string() + ": HDF5 file without a checksum (written by an older moekit); its integrity is unverified";
}

}  // namespace moekit::io
