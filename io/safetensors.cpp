#include "io/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "io/atomic_file.h"
#include "model/error.h"

namespace moekit::io {

using nlohmann::json;

namespace {

struct Entry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

std::string range_str(uint64_t b, uint64_t e) { return "[" + std::to_string(b) + ", " + std::to_string(e) + "]"; }

// nlohmann messages start with "[json.exception.parse_error.101] "; the rest is the useful part.
std::string json_message(const json::exception& e) {
  std::string s = e.what();
  const auto pos = s.find("] ");
  return pos == std::string::npos ? s : s.substr(pos + 2);
}

void read_at(std::ifstream& in, uint64_t offset, void* dst, uint64_t count, const fs::path& path,
             const std::string& what) {
  in.clear();
  in.seekg(std::streamoff(offset));
  in.read(static_cast<char*>(dst), std::streamsize(count));
  if (!in || uint64_t(in.gcount()) != count)
    fail(path, "unexpected end of file reading " + what + " at byte " + std::to_string(offset) +
                   " (file changed while reading?)");
}

// Parses the header, refusing duplicate keys in any object: nlohmann keeps the last silently,
// which would let two entries claim one name.
json parse_header(const std::string& text, const fs::path& path) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto callback = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == json::parse_event_t::key && !open_objects.empty()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  json j;
  try {
    j = json::parse(text, callback);
  } catch (const json::exception& e) {
    fail(path, "malformed JSON header: " + json_message(e));
  }
  check(duplicate.empty(), path, "duplicate key \"" + duplicate + "\" in the JSON header");
  check(j.is_object(), path, std::string("header is not a JSON object (got ") + j.type_name() + ")");
  return j;
}

std::map<std::string, std::string> parse_metadata(const json& m, const fs::path& path) {
  std::map<std::string, std::string> out;
  if (m.is_null()) return out;  // the reference's Option<HashMap> accepts null
  check(m.is_object(), path,
        std::string("__metadata__ must be an object of strings, got ") + m.type_name());
  for (const auto& [key, value] : m.items()) {
    check(value.is_string(), path,
          "__metadata__ value for key '" + key + "' must be a string, got " + value.type_name());
    out[key] = value.get<std::string>();
  }
  return out;
}

Entry parse_entry(const std::string& name, const json& v, uint64_t data_size, const fs::path& path) {
  const std::string t = "tensor '" + name + "': ";
  check(!name.empty(), path, "empty tensor name in the header");
  check(v.is_object(), path, t + "entry is not a JSON object (got " + v.type_name() + ")");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    check(v.contains(key), path, t + "missing \"" + key + "\"");
  Entry e;
  e.name = name;

  const json& dt = v["dtype"];
  check(dt.is_string(), path, t + "\"dtype\" must be a string, got " + dt.dump());
  const auto dtype = dtype_from_name(dt.get<std::string>());
  check(dtype.has_value(), path,
        t + "unknown dtype \"" + dt.get<std::string>() + "\" (supported: " + dtype_names() + ")");
  e.dtype = *dtype;

  const json& shape = v["shape"];
  check(shape.is_array(), path, t + "\"shape\" must be an array, got " + shape.dump());
  for (const json& d : shape) {
    check(d.is_number_integer(), path, t + "shape " + shape.dump() + " has a non-integer dimension");
    check(!(d.is_number_unsigned() && d.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())),
          path, t + "shape " + shape.dump() + " has a dimension too large");
    check(d.get<int64_t>() >= 0, path, t + "shape " + shape.dump() + " has a negative dimension");
    e.shape.push_back(d.get<int64_t>());
  }
  const auto numel = checked_numel(e.shape);
  const int64_t max_numel = std::numeric_limits<int64_t>::max() / int64_t(dtype_size(e.dtype));
  check(numel && *numel <= max_numel, path, t + "shape " + shape_string(e.shape) + " overflows (too many elements)");
  const uint64_t bytes = uint64_t(*numel) * dtype_size(e.dtype);

  const json& off = v["data_offsets"];
  check(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(), path,
        t + "\"data_offsets\" must be two non-negative integers [begin, end], got " + off.dump());
  e.begin = off[0].get<uint64_t>();
  e.end = off[1].get<uint64_t>();
  check(e.begin <= e.end, path, t + "data_offsets " + range_str(e.begin, e.end) + " are not ordered (begin > end)");
  check(e.end - e.begin == bytes, path,
        t + dt.get<std::string>() + " " + shape_string(e.shape) + " needs " + std::to_string(bytes) +
            " bytes, but data_offsets " + range_str(e.begin, e.end) + " cover " + std::to_string(e.end - e.begin));
  check(e.end <= data_size, path,
        t + "data_offsets " + range_str(e.begin, e.end) + " run past the end of the data section (" +
            std::to_string(data_size) + " bytes; file truncated?)");
  return e;
}

// Empty tensors occupy no bytes, so only non-empty ranges can overlap.
void check_no_overlap(std::vector<const Entry*> entries, const fs::path& path) {
  entries.erase(std::remove_if(entries.begin(), entries.end(), [](const Entry* e) { return e->begin == e->end; }),
                entries.end());
  std::sort(entries.begin(), entries.end(), [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < entries.size(); ++i) {
    const Entry& a = *entries[i - 1];
    const Entry& b = *entries[i];
    check(b.begin >= a.end, path,
          "tensors '" + a.name + "' " + range_str(a.begin, a.end) + " and '" + b.name + "' " +
              range_str(b.begin, b.end) + " overlap in the data section");
  }
}

}  // namespace

SafetensorsFile read_safetensors(const fs::path& path) {
  std::error_code ec;
  check(fs::exists(path, ec), path, "file not found");
  check(fs::is_regular_file(path, ec), path, "not a regular file");
  const uint64_t file_size = fs::file_size(path, ec);
  if (ec) fail(path, "cannot get the file size: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno));

  check(file_size >= 8, path,
        "file too short for a safetensors header (" + std::to_string(file_size) + " bytes, need at least 8)");
  unsigned char len_bytes[8];
  read_at(in, 0, len_bytes, 8, path, "the header length");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  check(header_len <= kMaxSafetensorsHeader, path,
        "header length " + std::to_string(header_len) + " is implausible (limit " +
            std::to_string(kMaxSafetensorsHeader) + " bytes); not a safetensors file?");
  check(header_len <= file_size - 8, path,
        "header length " + std::to_string(header_len) + " runs past the end of the file (only " +
            std::to_string(file_size - 8) + " bytes follow the length prefix)");
  std::string text(header_len, '\0');
  read_at(in, 8, text.data(), header_len, path, "the JSON header");
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = file_size - data_start;

  SafetensorsFile out;
  std::vector<Entry> entries;
  try {
    const json header = parse_header(text, path);
    for (const auto& [name, value] : header.items()) {
      if (name == "__metadata__")
        out.metadata = parse_metadata(value, path);
      else
        entries.push_back(parse_entry(name, value, data_size, path));
    }
  } catch (const json::exception& e) {  // a check above missed a case; still report it as ours
    fail(path, "invalid header: " + json_message(e));
  }
  std::vector<const Entry*> order;
  for (const auto& e : entries) order.push_back(&e);
  check_no_overlap(order, path);

  // Everything is validated; read the tensors in file order (one forward pass).
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  for (const Entry* e : order) {
    Tensor t;
    t.dtype = e->dtype;
    t.shape = e->shape;
    t.data.resize(e->end - e->begin);
    if (!t.data.empty()) read_at(in, data_start + e->begin, t.data.data(), t.data.size(), path, "tensor '" + e->name + "'");
    out.tensors.emplace(e->name, std::move(t));
  }
  return out;
}

void write_safetensors(const fs::path& path, const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    check(!name.empty() && name != "__metadata__", path, "invalid tensor name \"" + name + "\"");
    const auto numel = checked_numel(t.shape);
    check(numel.has_value(), path, "tensor '" + name + "': invalid shape " + shape_string(t.shape));
    const uint64_t bytes = uint64_t(*numel) * dtype_size(t.dtype);
    check(bytes == t.data.size(), path,
          "tensor '" + name + "': " + dtype_name(t.dtype) + " " + shape_string(t.shape) + " needs " +
              std::to_string(bytes) + " bytes, got " + std::to_string(t.data.size()));
    header[name] = {{"dtype", dtype_name(t.dtype)},
                    {"shape", t.shape},
                    {"data_offsets", json::array({offset, offset + bytes})}};
    offset += bytes;
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    fail(path, "cannot encode the header (names and metadata must be UTF-8): " + json_message(e));
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // the reference pads so the data starts aligned

  write_file_atomic(path, [&](std::ostream& out) {
    unsigned char len_bytes[8];
    for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<unsigned char>(uint64_t(text.size()) >> (8 * i));
    out.write(reinterpret_cast<const char*>(len_bytes), 8);
    out.write(text.data(), std::streamsize(text.size()));
    for (const auto& [name, t] : tensors)
      out.write(reinterpret_cast<const char*>(t.data.data()), std::streamsize(t.data.size()));
  });
}

}  // namespace moekit::io
