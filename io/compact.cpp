#include "io/compact.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "io/atomic_file.h"
#include "io/h5_checksum.h"
#include "io/hdf5.h"
#include "model/error.h"

namespace moekit::io {

namespace {

// dtype attribute value and the HDF5 type class/size/sign a dataset with it must have.
struct StoredType {
  DType dtype;
  const char* name;
  H5T_class_t cls;
  size_t size;
  bool is_signed;
};

constexpr StoredType kStoredTypes[] = {
    {DType::F32, "float32", H5T_FLOAT, 4, true},      {DType::F16, "float16", H5T_FLOAT, 2, true},
    {DType::BF16, "bfloat16", H5T_INTEGER, 2, false}, {DType::I8, "int8", H5T_INTEGER, 1, true},
    {DType::I32, "int32", H5T_INTEGER, 4, true},      {DType::I64, "int64", H5T_INTEGER, 8, true},
    {DType::U8, "uint8", H5T_INTEGER, 1, false},
};

const StoredType* stored_by_name(const std::string& name) {
  for (const auto& s : kStoredTypes)
    if (name == s.name) return &s;
  return nullptr;
}

std::string stored_names() {
  std::string s;
  for (const auto& t : kStoredTypes) s += (s.empty() ? "" : ", ") + std::string(t.name);
  return s;
}

// File type, also used as the memory type: the host is little-endian (dtype.cpp asserts it), so
// writing copies bytes and reading converts only files written big-endian by someone else.
h5::Datatype stored_type(DType dtype) {
  switch (dtype) {
    case DType::F32: return h5::copy_type(H5T_IEEE_F32LE);
    case DType::F16: return h5::float16_type();
    case DType::BF16: return h5::copy_type(H5T_STD_U16LE);
    case DType::I8: return h5::copy_type(H5T_STD_I8LE);
    case DType::I32: return h5::copy_type(H5T_STD_I32LE);
    case DType::I64: return h5::copy_type(H5T_STD_I64LE);
    case DType::U8: return h5::copy_type(H5T_STD_U8LE);
  }
  fail("", "invalid DType value " + std::to_string(int(dtype)));
}

bool type_matches(hid_t type, const StoredType& s) {
  if (H5Tget_class(type) != s.cls || H5Tget_size(type) != s.size) return false;
  return s.cls != H5T_INTEGER || (H5Tget_sign(type) != H5T_SGN_NONE) == s.is_signed;
}

void check_name(const std::string& name, const fs::path& path, const std::string& what) {
  check(!name.empty() && name != "." && name.find('/') == std::string::npos && name.find('\0') == std::string::npos,
        path, what + " name \"" + name + "\" is not a valid HDF5 link name (empty, \".\" or contains '/')");
}

// Shared by writer and reader: one finite, non-negative F32 scale per output row.
void check_scale(const Tensor& scale, int64_t rows, const std::string& name, const fs::path& path) {
  const std::string what = "scale of " + name;
  check(scale.dtype == DType::F32, path, what + ": expected float32, got " + dtype_name(scale.dtype));
  check(scale.shape.size() == 1, path, what + ": expected shape [" + std::to_string(rows) + "], got " +
                                           shape_string(scale.shape));
  check(scale.shape[0] == rows, path,
        what + " has " + std::to_string(scale.shape[0]) + " entries, expected " + std::to_string(rows));
  check(scale.data.size() == size_t(rows) * 4, path, what + ": byte count does not match its shape");
  for (int64_t r = 0; r < rows; ++r) {
    float s;
    std::memcpy(&s, scale.data.data() + r * 4, 4);
    check(std::isfinite(s) && s >= 0, path,
          what + ": row " + std::to_string(r) + " has scale " + std::to_string(s) + " (must be finite and >= 0)");
  }
}

void validate(const CompactModel& m, const fs::path& path) {
  for (const auto& [name, t] : m.tensors) {
    check_name(name, path, "tensor");
    const auto numel = checked_numel(t.shape);
    check(numel.has_value(), path, "tensor " + name + ": invalid shape " + shape_string(t.shape));
    check(uint64_t(*numel) * dtype_size(t.dtype) == t.data.size(), path,
          "tensor " + name + ": " + dtype_name(t.dtype) + " " + shape_string(t.shape) + " needs " +
              std::to_string(uint64_t(*numel) * dtype_size(t.dtype)) + " bytes, got " + std::to_string(t.data.size()));
    if (t.dtype != DType::I8) continue;
    check(t.shape.size() == 2, path, "int8 tensor " + name + " must be 2-D [rows, cols], got " + shape_string(t.shape));
    const auto it = m.scales.find(name);
    check(it != m.scales.end(), path, "int8 tensor " + name + " has no scales");
    check_scale(it->second, t.shape[0], name, path);
  }
  for (const auto& [name, s] : m.scales) {
    const auto it = m.tensors.find(name);
    check(it != m.tensors.end() && it->second.dtype == DType::I8, path,
          "scales given for " + name + ", which is not an int8 tensor");
  }
  for (const auto& [alias, target] : m.aliases) {
    check_name(alias, path, "alias");
    check(!m.tensors.count(alias), path, "alias " + alias + " is also a stored tensor");
    check(m.tensors.count(target), path, "alias " + alias + " refers to missing tensor " + target);
  }
}

void write_h5(const fs::path& tmp, const CompactModel& m, const fs::path& path) {
  h5::File file = h5::create_file(tmp, kChecksumBlockBytes);
  {
    h5::write_string_attribute(file, "format", kCompactFormat, path);
    h5::write_int_attribute(file, "version", kCompactVersion, path);
    h5::write_string_attribute(file, "config", m.config_json, path);
    h5::write_int_attribute(file, "do_lower_case", m.do_lower_case ? 1 : 0, path);
    const h5::Group vocab = h5::create_group(file, "vocab", path);
    h5::write_strings(vocab, "tokens", m.vocab, {int64_t(m.vocab.size())}, path);
    if (!m.tokenizer_files.empty()) {
      std::vector<std::string> names, contents;
      for (const auto& [name, text] : m.tokenizer_files) names.push_back(name), contents.push_back(text);
      const h5::Group tok = h5::create_group(file, "tokenizer", path);
      h5::write_strings(tok, "names", names, {int64_t(names.size())}, path);
      h5::write_strings(tok, "contents", contents, {int64_t(contents.size())}, path);
    }

    const h5::Group weights = h5::create_group(file, "weights", path);
    const h5::Group scales = h5::create_group(file, "scales", path);
    const h5::Datatype f32 = stored_type(DType::F32);
    for (const auto& [name, t] : m.tensors) {
      const h5::Datatype type = stored_type(t.dtype);
      const h5::Dataset ds = h5::write_dataset(weights, name, type, type, t.shape, t.data.data(), path);
      h5::write_string_attribute(ds, "dtype", compact_dtype_name(t.dtype), path);
      if (t.dtype != DType::I8) continue;
      h5::write_string_attribute(ds, "scale_dataset", "/scales/" + name, path);
      const Tensor& s = m.scales.at(name);
      h5::write_dataset(scales, name, f32, f32, s.shape, s.data.data(), path);
    }
    if (!m.aliases.empty()) {
      std::vector<std::string> pairs;
      for (const auto& [alias, target] : m.aliases) {
        h5::hard_link(weights, target, alias, path);
        pairs.push_back(alias);
        pairs.push_back(target);
      }
      h5::write_strings(file, "aliases", pairs, {int64_t(m.aliases.size()), 2}, path);
    }
  }
  file.close(path, "the file");  // flushes: a full disk shows up here
  seal_hdf5_checksum(tmp);
}

Tensor read_scale(hid_t scales, const std::string& name, int64_t rows, const fs::path& path) {
  const std::string object = "scale of " + name;
  const h5::Dataset ds = h5::open_dataset(scales, name, path);
  const h5::Datatype type = h5::dataset_type(ds, path, object);
  check(type_matches(type, kStoredTypes[0]), path, object + ": expected 32-bit float, got " + h5::type_description(type));
  Tensor s;
  s.shape = h5::dataset_shape(ds, path, object);
  s.data = h5::read_dataset(ds, stored_type(DType::F32), path, object);
  check_scale(s, rows, name, path);
  return s;
}

Tensor read_tensor(hid_t file, hid_t weights, const std::string& name, CompactModel& m, const fs::path& path) {
  const std::string object = "tensor " + name;
  check(h5::is_dataset(weights, name, path), path, "/weights/" + name + " is not a dataset");
  const h5::Dataset ds = h5::open_dataset(weights, name, path);
  check(h5::has_attribute(ds, "dtype", path), path, object + " has no dtype attribute");
  const std::string dtype = h5::read_string_attribute(ds, "dtype", path, object);
  const StoredType* st = stored_by_name(dtype);
  check(st != nullptr, path, object + ": unknown dtype \"" + dtype + "\" (expected one of " + stored_names() + ")");
  const h5::Datatype type = h5::dataset_type(ds, path, object);
  check(type_matches(type, *st), path,
        object + ": dtype attribute says " + dtype + " but the dataset stores " + h5::type_description(type));
  Tensor t;
  t.dtype = st->dtype;
  t.shape = h5::dataset_shape(ds, path, object);
  if (t.dtype == DType::I8) {  // scales first: cheap checks before the big read
    check(t.shape.size() == 2, path, "int8 " + object + " must be 2-D [rows, cols], got " + shape_string(t.shape));
    const std::string expected = "/scales/" + name;
    if (h5::has_attribute(ds, "scale_dataset", path)) {
      const std::string where = h5::read_string_attribute(ds, "scale_dataset", path, object);
      check(where == expected, path, object + ": scale_dataset is \"" + where + "\", expected \"" + expected + "\"");
    }
    check(h5::link_exists(file, "scales", path), path, "int8 " + object + " has no scales (no /scales group)");
    const h5::Group scales = h5::open_group(file, "scales", path);
    check(h5::link_exists(scales, name, path), path, "int8 " + object + " has no scales (expected " + expected + ")");
    m.scales[name] = read_scale(scales, name, t.shape[0], path);
  }
  t.data = h5::read_dataset(ds, stored_type(t.dtype), path, object);
  return t;
}

std::map<std::string, std::string> read_aliases(hid_t file, const fs::path& path) {
  std::map<std::string, std::string> aliases;
  if (!h5::link_exists(file, "aliases", path)) return aliases;
  const h5::Dataset ds = h5::open_dataset(file, "aliases", path);
  const auto shape = h5::dataset_shape(ds, path, "/aliases");
  check(shape.size() == 2 && shape[1] == 2, path, "/aliases must be [n, 2] (alias, target), got " + shape_string(shape));
  const auto pairs = h5::read_strings(ds, path, "/aliases");
  for (size_t i = 0; i + 1 < pairs.size(); i += 2) {
    check_name(pairs[i], path, "alias");
    check_name(pairs[i + 1], path, "alias target");
    check(aliases.emplace(pairs[i], pairs[i + 1]).second, path, "alias " + pairs[i] + " is listed twice");
  }
  return aliases;
}

}  // namespace

const char* compact_dtype_name(DType dtype) {
  for (const auto& s : kStoredTypes)
    if (s.dtype == dtype) return s.name;
  fail("", "invalid DType value " + std::to_string(int(dtype)));
}

void write_compact(const fs::path& path, const CompactModel& model) {
  validate(model, path);
  write_path_atomic(path, [&](const fs::path& tmp) { write_h5(tmp, model, path); });
}

CompactModel read_compact(const fs::path& path) {
  CompactModel m;
  check(fs::is_regular_file(path), path, "no such file");
  m.verified = verify_hdf5_checksum(path) == Integrity::verified;  // before libhdf5 sees the file
  const h5::File file = h5::open_file(path);
  const std::string root = "the root group";
  check(h5::has_attribute(file, "format", path), path, "not a moekit compact checkpoint (no 'format' attribute)");
  const std::string format = h5::read_string_attribute(file, "format", path, root);
  check(format == kCompactFormat, path, "not a moekit compact checkpoint (format attribute is \"" + format +
                                            "\", expected \"" + kCompactFormat + "\")");
  check(h5::has_attribute(file, "version", path), path, "missing 'version' attribute");
  const int64_t version = h5::read_int_attribute(file, "version", path, root);
  if (version > kCompactVersion)
    fail(path, "written by a newer moekit (format version " + std::to_string(version) + " > " +
                   std::to_string(kCompactVersion) + "); upgrade moekit");
  check(version >= 1, path, "invalid format version " + std::to_string(version));

  check(h5::has_attribute(file, "config", path), path, "missing 'config' attribute (the model's config.json)");
  m.config_json = h5::read_string_attribute(file, "config", path, root);
  const auto config = nlohmann::json::parse(m.config_json, nullptr, false);
  check(config.is_object(), path, "the 'config' attribute is not a JSON object");
  check(h5::has_attribute(file, "do_lower_case", path), path, "missing 'do_lower_case' attribute");
  const int64_t lower = h5::read_int_attribute(file, "do_lower_case", path, root);
  check(lower == 0 || lower == 1, path, "do_lower_case must be 0 or 1, got " + std::to_string(lower));
  m.do_lower_case = lower == 1;

  const h5::Group vocab = h5::open_group(file, "vocab", path);
  const h5::Dataset tokens = h5::open_dataset(vocab, "tokens", path);
  check(h5::dataset_shape(tokens, path, "/vocab/tokens").size() == 1, path, "/vocab/tokens must be 1-D");
  m.vocab = h5::read_strings(tokens, path, "/vocab/tokens");
  if (h5::link_exists(file, "tokenizer", path)) {
    const h5::Group tok = h5::open_group(file, "tokenizer", path);
    const auto names = h5::read_strings(h5::open_dataset(tok, "names", path), path, "/tokenizer/names");
    const auto contents = h5::read_strings(h5::open_dataset(tok, "contents", path), path, "/tokenizer/contents");
    check(names.size() == contents.size(), path, "/tokenizer: " + std::to_string(names.size()) + " names for " +
                                                     std::to_string(contents.size()) + " contents");
    for (size_t i = 0; i < names.size(); ++i) m.tokenizer_files[names[i]] = contents[i];
  }

  m.aliases = read_aliases(file, path);
  const h5::Group weights = h5::open_group(file, "weights", path);
  for (const auto& name : h5::link_names(weights, path, "/weights"))
    if (!m.aliases.count(name)) m.tensors[name] = read_tensor(file, weights, name, m, path);
  for (const auto& [alias, target] : m.aliases) {
    check(m.tensors.count(target), path, "alias " + alias + " refers to missing tensor " + target);
    check(h5::link_exists(weights, alias, path), path, "alias " + alias + " has no link /weights/" + alias);
    check(h5::same_object(weights, alias, target, path), path,
          "/weights/" + alias + " is a separate dataset, not a hard link to its alias target " + target);
  }
  if (h5::link_exists(file, "scales", path)) {
    const h5::Group scales = h5::open_group(file, "scales", path);
    for (const auto& name : h5::link_names(scales, path, "/scales"))
      check(m.scales.count(name), path, "/scales/" + name + " belongs to no int8 tensor");
  }
  return m;
}

bool is_compact_file(const fs::path& path) {
  static const char kSignature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  // Our checksum block (h5_checksum.h) marks it even when the HDF5 signature behind it is damaged.
  static const std::string kBlock = "moekit-hdf5-checksum ";
  std::string head(kBlock.size(), '\0');
  if (in.read(head.data(), std::streamsize(head.size())) && head == kBlock) return true;
  in.clear();
  // HDF5 looks for its superblock at 0, then at 512, 1024, 2048, ... (after a user block).
  for (uint64_t offset = 0; offset < (uint64_t(1) << 40); offset = offset ? offset * 2 : 512) {
    char buf[8];
    in.seekg(std::streamoff(offset));
    if (!in.read(buf, 8)) return false;
    if (std::memcmp(buf, kSignature, 8) == 0) return true;
  }
  return false;
}

}  // namespace moekit::io
