// Integrity of the HDF5 files moekit writes (compact exports, importance scores), checked before
// libhdf5 reads a byte: libhdf5 trusts its metadata and can crash or hang on a damaged file.
//
// The file starts with a 512-byte HDF5 user block (standard HDF5: h5py and h5dump skip it) that
// holds one text line, then zeros:
//   "moekit-hdf5-checksum v1 xxh3-128 <32 hex digits> length <20 digits>\n"
// The hash (XXH3, 128 bits) covers every byte after the block; length is that byte count, so a
// truncated or extended file fails too. Any other byte in the block must be zero.
//
// This catches accidental damage (bit flips, truncation, a half-copied file), not a crafted file:
// anyone can recompute the hash. Untrusted models should come as safetensors, which moekit
// validates field by field.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

namespace moekit::io {

constexpr uint64_t kChecksumBlockBytes = 512;

enum class Integrity { verified, unverified };

// Writes the block into a closed HDF5 file created with create_file(path, kChecksumBlockBytes).
void seal_hdf5_checksum(const std::filesystem::path& file);

// verified: the block is intact and the hash matches. unverified: a plain HDF5 file without the
// block (written by an older moekit); the caller warns. Otherwise throws
// "FILE: file is corrupt or truncated (checksum ...)".
Integrity verify_hdf5_checksum(const std::filesystem::path& file);

// The warning for an unverified file, naming it.
std::string unverified_warning(const std::filesystem::path& file);

}  // namespace moekit::io
