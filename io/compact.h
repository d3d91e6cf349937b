// The compact checkpoint (DESIGN 5): one HDF5 file holding a model for inference.
//
// Layout, format version 1:
//   /                       attributes: format = "moekit" (string), version = 1 (integer),
//                           config = config.json text (string), do_lower_case = 0|1 (integer)
//   /vocab/tokens           [n] variable-length UTF-8 strings, one per vocabulary id
//   /tokenizer/names, /tokenizer/contents  (optional) [k] strings: the tokenizer files, name and text
//   /weights/<hf name>      one dataset per tensor, HF names unchanged (dots are fine in HDF5
//                           link names); chunked, shuffle + gzip level 4; attribute dtype =
//                           "float32" | "float16" | "bfloat16" | "int8" | "int32" | "int64" | "uint8".
//                           HDF5 types: IEEE F32LE; float16 = IEEE half LE built by hand (HDF5 1.10
//                           lacks H5T_IEEE_F16LE; h5py reads it as float16); bfloat16 = STD_U16LE
//                           bits (no HDF5 or numpy bf16 type); int8/int32/int64/uint8 = STD_*LE.
//                           int8 tensors are [rows, cols] with attribute scale_dataset = "/scales/<name>".
//   /scales/<hf name>       float32 [rows]: per-output-row symmetric scale, w ~= scale[r] * q[r, c];
//                           an alias of an int8 tensor uses its target's scale.
//   /aliases                [n, 2] strings (alias, target), present only when there are aliases.
//                           Each alias is also an HDF5 hard link /weights/<alias> -> the target's
//                           dataset, so the data are stored once and h5py users see every name.
//
// Goals:
//   - Smallest faithful single-file deployment artefact; readable with plain h5py
//     (f["weights/bert.pooler.dense.weight"][:], f.attrs["config"]).
//   - Every reader check gives one moekit::Error naming the file: not HDF5/truncated, wrong format,
//     newer version, missing config, unknown or contradicting dtype, bad scales, dangling aliases.
//   - Atomic writes (temp sibling, fsync, rename) and reproducible bytes (no timestamps).
// Non-goals:
//   - Training state (optimizer moments, step): that is the safetensors checkpoint directory.
//   - Partial or lazy loading, and quantization schemes other than int8 per-row symmetric.
//   - Hostile files. Every check above runs, but HDF5 1.10 itself can crash or hang on crafted
//     metadata (byte-flip fuzzing: ~1.5% of mutations, inside H5HG_read for variable-length
//     strings and H5F__accum_read). The checksum block (h5_checksum.h, written since format 1's
//     files gained it; older files load unverified with a warning) stops accidental damage
//     before libhdf5 reads anything, not a crafted file. Exchange safetensors when untrusted.
// Versioning (STYLE 2.6): readers accept version <= kCompactVersion and refuse newer ones with
// "written by a newer moekit (format version N > 1); upgrade moekit". Additive changes (a new
// optional attribute or dataset) keep the version; renames or layout changes bump it.
// Fixture: tests/data/compact/v1.h5 (see the README there).
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "io/dtype.h"

namespace moekit::io {

namespace fs = std::filesystem;

constexpr int64_t kCompactVersion = 1;
inline constexpr const char* kCompactFormat = "moekit";

struct CompactModel {
  std::string config_json;
  std::vector<std::string> vocab;
  // The source directory's tokenizer files (tokenizer.json, vocab.json, merges.txt, ...): name ->
  // contents, in /tokenizer/{names,contents}; empty = none (then /vocab is the tokenizer).
  std::map<std::string, std::string> tokenizer_files;
  bool do_lower_case = true;
  std::map<std::string, Tensor> tensors;
  // For I8 tensors [rows, cols]: F32 [rows] per-output-row scale, keyed by the tensor's name.
  std::map<std::string, Tensor> scales;
  // alias name -> stored tensor name, for shared weights stored once (no alias chains).
  std::map<std::string, std::string> aliases;
  // Read side: false for a file without the checksum block (an older export; see h5_checksum.h).
  bool verified = true;
};

// Validates the model (names, sizes, scales, aliases) before writing; writes atomically.
void write_compact(const fs::path& path, const CompactModel& model);

CompactModel read_compact(const fs::path& path);

// True when the file starts with the HDF5 signature (at byte 0 or a user-block offset 512, 1024, ...).
bool is_compact_file(const fs::path& path);

// "float32", "int8", ... as stored in the dtype attribute.
const char* compact_dtype_name(DType dtype);

}  // namespace moekit::io
