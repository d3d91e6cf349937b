// Thin RAII layer over the HDF5 C API (STYLE 2.5): every hid_t lives in a Handle, HDF5's automatic
// error printing is off, and every negative return becomes moekit::Error(path, "which call, which
// object"), with HDF5's innermost error description appended when it has one.
// Only what the compact checkpoint needs; written so h5py reads the files and files h5py writes
// (variable- or fixed-length string attributes, integer attributes) read back.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace moekit::io::h5 {

namespace fs = std::filesystem;

// Turns off HDF5's automatic error stack printing, once per process. Every opener below calls it.
void silence_errors();

// Throws Error(path, call + " failed on " + object) when id/status is negative; returns it otherwise.
hid_t checked(hid_t id, const fs::path& path, const char* call, const std::string& object);

template <herr_t (*Close)(hid_t)>
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, -1)) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, -1);
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }

  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }  // so handles pass straight to H5* calls
  void reset() {
    if (id_ >= 0) Close(id_);  // destructors cannot report; close() below does
    id_ = -1;
  }
  // Closing a file flushes it, which can fail: writers close explicitly and check.
  void close(const fs::path& path, const std::string& object) {
    const hid_t id = std::exchange(id_, -1);
    if (id >= 0) checked(Close(id), path, "close", object);
  }

 private:
  hid_t id_ = -1;
};

using File = Handle<H5Fclose>;
using Group = Handle<H5Gclose>;
using Dataset = Handle<H5Dclose>;
using Dataspace = Handle<H5Sclose>;
using Datatype = Handle<H5Tclose>;
using Attribute = Handle<H5Aclose>;
using PropList = Handle<H5Pclose>;

// Files and links. open_file's failure message is "not a readable HDF5 file (truncated or corrupt?)".
// Truncates. user_block > 0 (a power of two >= 512) reserves that many bytes before the HDF5 data
// (see h5_checksum.h).
File create_file(const fs::path& path, uint64_t user_block = 0);
File open_file(const fs::path& path, bool writable = false);
Group create_group(hid_t loc, const std::string& name, const fs::path& path);
Group open_group(hid_t loc, const std::string& name, const fs::path& path);
Dataset open_dataset(hid_t loc, const std::string& name, const fs::path& path);
// Whether the single link `name` exists in group `loc` (no path walking).
bool link_exists(hid_t loc, const std::string& name, const fs::path& path);
// Link names of a group in name order.
std::vector<std::string> link_names(hid_t group, const fs::path& path, const std::string& object);
bool is_dataset(hid_t loc, const std::string& name, const fs::path& path);
// Whether two links in `loc` reach the same object (hard links: one copy in the file).
bool same_object(hid_t loc, const std::string& a, const std::string& b, const fs::path& path);
void hard_link(hid_t loc, const std::string& target, const std::string& link, const fs::path& path);

// Types. HDF5 1.10 has no H5T_IEEE_F16LE: this is the IEEE half layout built the way h5py builds
// its float16 (copy of F32LE with sign 15, exponent 10..14, mantissa 0..9, bias 15).
Datatype float16_type();
Datatype copy_type(hid_t type);
Datatype dataset_type(hid_t dataset, const fs::path& path, const std::string& object);
// "32-bit float", "8-bit signed integer", "variable-length string", ... for error messages.
std::string type_description(hid_t type);

// Datasets. write_dataset chunks, shuffles and gzips (level 4) non-empty data; scalar (shape [])
// and empty datasets are stored plainly. Data are in mem_type, converted to file_type by HDF5.
Dataset write_dataset(hid_t loc, const std::string& name, hid_t file_type, hid_t mem_type,
                      const std::vector<int64_t>& shape, const void* data, const fs::path& path);
// Shape of a simple or scalar dataset ([] for scalar); refuses null dataspaces and overflow.
std::vector<int64_t> dataset_shape(hid_t dataset, const fs::path& path, const std::string& object);
// The whole dataset converted to mem_type. Refuses, before allocating, shapes that the stored
// bytes cannot hold even gzipped (a corrupt header) or that exceed kMaxReadBytes.
std::vector<uint8_t> read_dataset(hid_t dataset, hid_t mem_type, const fs::path& path,
                                  const std::string& object);
constexpr uint64_t kMaxReadBytes = uint64_t(1) << 36;  // 64 GiB: far above any BERT, catches nonsense
// Variable-length UTF-8 strings (h5py's str); reading also accepts fixed-length strings.
void write_strings(hid_t loc, const std::string& name, const std::vector<std::string>& values,
                   const std::vector<int64_t>& shape, const fs::path& path);
std::vector<std::string> read_strings(hid_t dataset, const fs::path& path, const std::string& object);

// Scalar attributes on a group or dataset.
bool has_attribute(hid_t obj, const std::string& name, const fs::path& path);
void write_string_attribute(hid_t obj, const std::string& name, const std::string& value,
                            const fs::path& path);
std::string read_string_attribute(hid_t obj, const std::string& name, const fs::path& path,
                                  const std::string& object);
void write_int_attribute(hid_t obj, const std::string& name, int64_t value, const fs::path& path);
int64_t read_int_attribute(hid_t obj, const std::string& name, const fs::path& path,
                           const std::string& object);

}  // namespace moekit::io::h5
