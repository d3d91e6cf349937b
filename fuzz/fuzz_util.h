// Shared by the libFuzzer targets: the readers take paths, so each input is written to a file
// first. moekit::Error is the expected answer to bad input; any other exception escaping a reader
// is a finding (the user would see a generic message, or a crash), so it aborts the run.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>

#include "model/error.h"

namespace moekit::fuzz {

// One scratch file per process and name, rewritten for every input.
inline std::filesystem::path input_file(const uint8_t* data, size_t size, const std::string& name) {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("moekit-fuzz-" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  const auto path = dir / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  return path;
}

// True for a plain HDF5 file (signature at byte 0, no moekit checksum block): such inputs go to
// libhdf5 unverified, where HDF5 1.10 is known to crash on crafted metadata (io/compact.h). The
// HDF5 targets skip them unless built with -DMOEKIT_FUZZ_UNVERIFIED=1, so runs measure moekit's
// own code (the checksum check and every reader check behind it).
inline bool skip_unverified_hdf5(const uint8_t* data, size_t size) {
#if MOEKIT_FUZZ_UNVERIFIED
  return false;
#else
  static const char kHdf5[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
  return size >= 8 && std::memcmp(data, kHdf5, 8) == 0;
#endif
}

template <typename F>
void expect_error_or_success(F run) {
  try {
    run();
  } catch (const moekit::Error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "uncaught non-moekit exception: %s\n", e.what());
    std::abort();
  }
}

}  // namespace moekit::fuzz
