// safetensors reader and writer (https://github.com/huggingface/safetensors):
//   8 bytes little-endian u64 N | N bytes JSON header | data section
//   header = {name: {"dtype": "F32", "shape": [r, c], "data_offsets": [begin, end]}, ...,
//             "__metadata__": {string: string}}   offsets relative to the start of the data section.
//
// Goals:
//   - Read real Hugging Face checkpoints (F32/F16/BF16 weights, legacy I64 buffers such as
//     bert.embeddings.position_ids) and moekit's own output, bit for bit.
//   - Validate every length, offset, dtype and shape before allocating or reading, so a corrupt
//     or hostile file gives one clear Error naming the file, never a crash or a huge allocation.
//   - Write files the reference implementation reads: header padded with spaces to a multiple of
//     8 bytes, data in name order, written atomically.
// Non-goals:
//   - Zero-copy mmap and lazy loading: moekit models are small and convert every tensor anyway.
//   - dtypes moekit never uses (F64, BOOL, F8_*, U16, ...): refused with the dtype named.
//   - Sharded checkpoints (model.safetensors.index.json): the caller reads each shard.
// Leniency: gaps in the data section and trailing bytes are accepted (the reference refuses
// them); overlapping ranges are not. Unknown keys inside a tensor entry are ignored.
#pragma once
#include <filesystem>
#include <map>
#include <string>

#include "io/dtype.h"

namespace moekit::io {

namespace fs = std::filesystem;

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;  // "__metadata__", e.g. {"format": "pt"}
};

// Upper bound on the JSON header, as in the reference implementation.
constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;

SafetensorsFile read_safetensors(const fs::path& path);

void write_safetensors(const fs::path& path, const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace moekit::io
