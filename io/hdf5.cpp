#include "io/hdf5.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "io/dtype.h"
#include "model/error.h"

namespace moekit::io::h5 {

namespace {

using Object = Handle<H5Oclose>;

constexpr uint64_t kChunkBytes = uint64_t(1) << 20;  // ~1 MiB chunks: partial reads stay cheap in h5py

herr_t innermost_error(unsigned, const H5E_error2_t* err, void* data) {
  // Walking downward goes from the API call to where the error was detected; keep the last.
  if (err->desc && *err->desc) *static_cast<std::string*>(data) = err->desc;
  return 0;
}

// HDF5's own description of the most recent failure, then the stack is cleared.
std::string hdf5_detail() {
  std::string detail;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, innermost_error, &detail);
  H5Eclear2(H5E_DEFAULT);
  return detail.empty() ? "" : " (HDF5: " + detail + ")";
}

// Link creation with UTF-8 names, as h5py does.
PropList utf8_links(const fs::path& path) {
  PropList lcpl(checked(H5Pcreate(H5P_LINK_CREATE), path, "H5Pcreate", "link properties"));
  checked(H5Pset_char_encoding(lcpl, H5T_CSET_UTF8), path, "H5Pset_char_encoding", "link properties");
  return lcpl;
}

// Object creation without modification times, so the same model gives the same bytes.
PropList untimed(hid_t cls, const fs::path& path, const std::string& object) {
  PropList pl(checked(H5Pcreate(cls), path, "H5Pcreate", object));
  checked(H5Pset_obj_track_times(pl, false), path, "H5Pset_obj_track_times", object);
  return pl;
}

Dataspace make_space(const std::vector<int64_t>& shape, const fs::path& path, const std::string& object) {
  if (shape.empty()) return Dataspace(checked(H5Screate(H5S_SCALAR), path, "H5Screate", object));
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  return Dataspace(checked(H5Screate_simple(int(dims.size()), dims.data(), nullptr), path,
                           "H5Screate_simple", object));
}

Datatype vlen_string_type(H5T_cset_t cset, const fs::path& path) {
  Datatype t(checked(H5Tcopy(H5T_C_S1), path, "H5Tcopy", "string type"));
  checked(H5Tset_size(t, H5T_VARIABLE), path, "H5Tset_size", "string type");
  checked(H5Tset_cset(t, cset), path, "H5Tset_cset", "string type");
  return t;
}

// Frees the strings HDF5 allocated for a variable-length read, also when copying throws.
struct VlenBuffer {
  std::vector<char*> ptrs;
  ~VlenBuffer() {
    for (char* p : ptrs)
      if (p) H5free_memory(p);
  }
};

std::string trim_fixed(const char* p, size_t size, H5T_str_t pad) {
  std::string s(p, strnlen(p, size));
  if (pad == H5T_STR_SPACEPAD) s.erase(s.find_last_not_of(' ') + 1);
  return s;
}

// Reads n strings of `type` through `read(mem_type, buffer)` (a dataset or attribute read).
template <class Read>
std::vector<std::string> read_string_values(hid_t type, size_t n, const fs::path& path,
                                            const std::string& object, Read read) {
  std::vector<std::string> out;
  out.reserve(n);
  if (H5Tis_variable_str(type) > 0) {
    const Datatype mem = vlen_string_type(H5Tget_cset(type), path);
    VlenBuffer buf;
    buf.ptrs.assign(n, nullptr);
    if (n) checked(read(mem.get(), static_cast<void*>(buf.ptrs.data())), path, "read", object);
    for (char* p : buf.ptrs) out.emplace_back(p ? p : "");
    return out;
  }
  const size_t size = H5Tget_size(type);
  check(size > 0 && n <= kMaxReadBytes / size, path, object + ": string data too large");
  const Datatype mem = copy_type(type);
  std::vector<char> buf(n * size);
  if (n) checked(read(mem.get(), static_cast<void*>(buf.data())), path, "read", object);
  const H5T_str_t pad = H5Tget_strpad(type);
  for (size_t i = 0; i < n; ++i) out.push_back(trim_fixed(buf.data() + i * size, size, pad));
  return out;
}

// One value (scalar or a single-element array) of the given class, or an Error saying what it is.
Attribute open_single_attribute(hid_t obj, const std::string& name, H5T_class_t cls, const char* kind,
                                const fs::path& path, const std::string& object, Datatype& type) {
  silence_errors();
  const std::string what = "attribute '" + name + "' of " + object;
  check(has_attribute(obj, name, path), path, "missing " + what);
  Attribute attr(checked(H5Aopen(obj, name.c_str(), H5P_DEFAULT), path, "H5Aopen", what));
  type = Datatype(checked(H5Aget_type(attr), path, "H5Aget_type", what));
  if (H5Tget_class(type) != cls) fail(path, what + " must be " + kind + ", got " + type_description(type));
  Dataspace space(checked(H5Aget_space(attr), path, "H5Aget_space", what));
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  check(n == 1, path, what + " must hold one value, got " + std::to_string(n));
  return attr;
}

// A corrupt header can claim any shape: refuse shapes the stored bytes cannot hold before
// allocating. zlib inflates at most ~1032:1, so a fully written dataset never exceeds this.
void check_claimed_size(hid_t dataset, uint64_t numel, const fs::path& path, const std::string& object) {
  const Datatype type(checked(H5Dget_type(dataset), path, "H5Dget_type", object));
  const uint64_t elem = H5Tget_size(type);
  check(elem > 0 && numel <= kMaxReadBytes / elem, path,
        object + ": " + std::to_string(numel) + " elements are too large to read (over " +
            std::to_string(kMaxReadBytes >> 30) + " GiB)");
  const uint64_t stored = H5Dget_storage_size(dataset);
  check(numel * elem <= stored * 1100 + 65536, path,
        object + ": needs " + std::to_string(numel * elem) + " bytes but the file stores only " +
            std::to_string(stored) + " (corrupt or never written)");
}

}  // namespace

void silence_errors() {
  // Per thread, since a thread-safe HDF5 keeps one error stack per thread.
  static thread_local bool done = false;
  if (!done) H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  done = true;
}

hid_t checked(hid_t id, const fs::path& path, const char* call, const std::string& object) {
  if (id < 0) fail(path, std::string(call) + " failed on " + object + hdf5_detail());
  return id;
}

File create_file(const fs::path& path, uint64_t user_block) {
  silence_errors();
  const PropList fcpl(checked(H5Pcreate(H5P_FILE_CREATE), path, "H5Pcreate", "file properties"));
  if (user_block) checked(H5Pset_userblock(fcpl, hsize_t(user_block)), path, "H5Pset_userblock", "the file");
  return File(checked(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl, H5P_DEFAULT), path, "H5Fcreate", "the file"));
}

File open_file(const fs::path& path, bool writable) {
  silence_errors();
  std::error_code ec;
  check(fs::exists(path, ec), path, "no such file");
  check(fs::is_regular_file(path, ec), path, "not a regular file");
  const hid_t id = H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0) fail(path, "not a readable HDF5 file (truncated or corrupt?)" + hdf5_detail());
  return File(id);
}

Group create_group(hid_t loc, const std::string& name, const fs::path& path) {
  silence_errors();
  const PropList gcpl = untimed(H5P_GROUP_CREATE, path, "group " + name);
  return Group(checked(H5Gcreate2(loc, name.c_str(), utf8_links(path), gcpl, H5P_DEFAULT), path, "H5Gcreate2",
                       "group " + name));
}

Group open_group(hid_t loc, const std::string& name, const fs::path& path) {
  silence_errors();
  check(link_exists(loc, name, path), path, "missing group " + name);
  return Group(checked(H5Gopen2(loc, name.c_str(), H5P_DEFAULT), path, "H5Gopen2", "group " + name));
}

Dataset open_dataset(hid_t loc, const std::string& name, const fs::path& path) {
  silence_errors();
  check(link_exists(loc, name, path), path, "missing dataset " + name);
  return Dataset(checked(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), path, "H5Dopen2", "dataset " + name));
}

bool link_exists(hid_t loc, const std::string& name, const fs::path& path) {
  silence_errors();
  return checked(H5Lexists(loc, name.c_str(), H5P_DEFAULT), path, "H5Lexists", name) > 0;
}

std::vector<std::string> link_names(hid_t group, const fs::path& path, const std::string& object) {
  silence_errors();
  H5G_info_t info;
  checked(H5Gget_info(group, &info), path, "H5Gget_info", object);
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t len = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    checked(len, path, "H5Lget_name_by_idx", object);
    std::string name(size_t(len) + 1, '\0');
    checked(H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT),
            path, "H5Lget_name_by_idx", object);
    name.resize(size_t(len));
    names.push_back(std::move(name));
  }
  return names;
}

bool is_dataset(hid_t loc, const std::string& name, const fs::path& path) {
  silence_errors();
  const Object obj(checked(H5Oopen(loc, name.c_str(), H5P_DEFAULT), path, "H5Oopen", name));
  return H5Iget_type(obj) == H5I_DATASET;
}

bool same_object(hid_t loc, const std::string& a, const std::string& b, const fs::path& path) {
  silence_errors();
#if H5_VERSION_GE(1, 12, 0)
  H5O_info2_t ia, ib;
  checked(H5Oget_info_by_name3(loc, a.c_str(), &ia, H5O_INFO_BASIC, H5P_DEFAULT), path, "H5Oget_info_by_name", a);
  checked(H5Oget_info_by_name3(loc, b.c_str(), &ib, H5O_INFO_BASIC, H5P_DEFAULT), path, "H5Oget_info_by_name", b);
  int cmp = 1;
  checked(H5Otoken_cmp(loc, &ia.token, &ib.token, &cmp), path, "H5Otoken_cmp", a);
  return ia.fileno == ib.fileno && cmp == 0;
#else
  H5O_info_t ia, ib;
  checked(H5Oget_info_by_name2(loc, a.c_str(), &ia, H5O_INFO_BASIC, H5P_DEFAULT), path, "H5Oget_info_by_name", a);
  checked(H5Oget_info_by_name2(loc, b.c_str(), &ib, H5O_INFO_BASIC, H5P_DEFAULT), path, "H5Oget_info_by_name", b);
  return ia.fileno == ib.fileno && ia.addr == ib.addr;
#endif
}

void hard_link(hid_t loc, const std::string& target, const std::string& link, const fs::path& path) {
  silence_errors();
  checked(H5Lcreate_hard(loc, target.c_str(), loc, link.c_str(), utf8_links(path), H5P_DEFAULT), path,
          "H5Lcreate_hard", link + " -> " + target);
}

Datatype float16_type() {
  silence_errors();
  const fs::path none;
  Datatype t(checked(H5Tcopy(H5T_IEEE_F32LE), none, "H5Tcopy", "float16 type"));
  // Fields first: H5Tset_size refuses to cut off bits that the fields still use.
  checked(H5Tset_fields(t, 15, 10, 5, 0, 10), none, "H5Tset_fields", "float16 type");
  checked(H5Tset_size(t, 2), none, "H5Tset_size", "float16 type");
  checked(H5Tset_ebias(t, 15), none, "H5Tset_ebias", "float16 type");
  return t;
}

Datatype copy_type(hid_t type) {
  silence_errors();
  return Datatype(checked(H5Tcopy(type), fs::path(), "H5Tcopy", "a datatype"));
}

Datatype dataset_type(hid_t dataset, const fs::path& path, const std::string& object) {
  silence_errors();
  return Datatype(checked(H5Dget_type(dataset), path, "H5Dget_type", object));
}

std::string type_description(hid_t type) {
  const size_t bits = 8 * H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return std::to_string(bits) + "-bit " + (H5Tget_sign(type) == H5T_SGN_NONE ? "unsigned" : "signed") +
             " integer";
    case H5T_FLOAT: return std::to_string(bits) + "-bit float";
    case H5T_STRING:
      return H5Tis_variable_str(type) > 0 ? "variable-length string"
                                          : "fixed-length string of " + std::to_string(bits / 8) + " bytes";
    case H5T_TIME: return "time";
    case H5T_BITFIELD: return "bitfield";
    case H5T_OPAQUE: return "opaque";
    case H5T_COMPOUND: return "compound";
    case H5T_REFERENCE: return "reference";
    case H5T_ENUM: return "enum";
    case H5T_VLEN: return "variable-length sequence";
    case H5T_ARRAY: return "array";
    default: return "unknown type";
  }
}

Dataset write_dataset(hid_t loc, const std::string& name, hid_t file_type, hid_t mem_type,
                      const std::vector<int64_t>& shape, const void* data, const fs::path& path) {
  silence_errors();
  const std::string object = "dataset " + name;
  const auto numel = checked_numel(shape);
  check(numel.has_value(), path, object + ": invalid shape " + shape_string(shape));
  const Dataspace space = make_space(shape, path, object);
  const PropList dcpl = untimed(H5P_DATASET_CREATE, path, object);
  if (!shape.empty() && *numel > 0) {
    // Whole rows per chunk, about kChunkBytes each; HDF5 caps a chunk at 4 GiB.
    const uint64_t row_bytes = uint64_t(*numel / shape[0]) * H5Tget_size(file_type);
    check(row_bytes < (uint64_t(1) << 32), path, object + ": one row exceeds HDF5's 4 GiB chunk limit");
    std::vector<hsize_t> chunk(shape.begin(), shape.end());
    chunk[0] = std::clamp<hsize_t>(kChunkBytes / row_bytes, 1, hsize_t(shape[0]));
    checked(H5Pset_chunk(dcpl, int(chunk.size()), chunk.data()), path, "H5Pset_chunk", object);
    checked(H5Pset_shuffle(dcpl), path, "H5Pset_shuffle", object);  // before deflate: filter order
    checked(H5Pset_deflate(dcpl, 4), path, "H5Pset_deflate", object);
  }
  Dataset ds(checked(H5Dcreate2(loc, name.c_str(), file_type, space, utf8_links(path), dcpl, H5P_DEFAULT), path,
                     "H5Dcreate2", object));
  if (*numel > 0) checked(H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), path, "H5Dwrite", object);
  return ds;
}

std::vector<int64_t> dataset_shape(hid_t dataset, const fs::path& path, const std::string& object) {
  silence_errors();
  const Dataspace space(checked(H5Dget_space(dataset), path, "H5Dget_space", object));
  const H5S_class_t cls = H5Sget_simple_extent_type(space);
  if (cls == H5S_SCALAR) return {};
  check(cls == H5S_SIMPLE, path, object + " has no data (null dataspace)");
  const int rank = checked(H5Sget_simple_extent_ndims(space), path, "H5Sget_simple_extent_ndims", object);
  std::vector<hsize_t> dims(size_t(rank), 0);
  checked(H5Sget_simple_extent_dims(space, dims.data(), nullptr), path, "H5Sget_simple_extent_dims", object);
  std::vector<int64_t> shape;
  for (hsize_t d : dims) {
    check(d <= hsize_t(std::numeric_limits<int64_t>::max()), path, object + ": dimension too large");
    shape.push_back(int64_t(d));
  }
  check(checked_numel(shape).has_value(), path, object + ": element count of " + shape_string(shape) + " overflows");
  return shape;
}

std::vector<uint8_t> read_dataset(hid_t dataset, hid_t mem_type, const fs::path& path, const std::string& object) {
  const std::vector<int64_t> shape = dataset_shape(dataset, path, object);
  const uint64_t numel = uint64_t(*checked_numel(shape));
  check_claimed_size(dataset, numel, path, object);
  const size_t elem = H5Tget_size(mem_type);
  check(elem > 0 && numel <= kMaxReadBytes / elem, path, object + ": too large to read");
  std::vector<uint8_t> bytes(numel * elem);
  if (numel) checked(H5Dread(dataset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()), path, "H5Dread", object);
  return bytes;
}

void write_strings(hid_t loc, const std::string& name, const std::vector<std::string>& values,
                   const std::vector<int64_t>& shape, const fs::path& path) {
  silence_errors();
  const std::string object = "dataset " + name;
  check(checked_numel(shape) == int64_t(values.size()), path,
        object + ": " + std::to_string(values.size()) + " strings do not fill " + shape_string(shape));
  std::vector<const char*> ptrs;
  for (const auto& v : values) {
    check(v.find('\0') == std::string::npos, path, object + ": string contains a NUL byte");
    ptrs.push_back(v.c_str());
  }
  const Datatype type = vlen_string_type(H5T_CSET_UTF8, path);
  const Dataspace space = make_space(shape, path, object);
  // No filters: gzip on variable-length data only compresses heap pointers.
  const PropList dcpl = untimed(H5P_DATASET_CREATE, path, object);
  const Dataset ds(checked(H5Dcreate2(loc, name.c_str(), type, space, utf8_links(path), dcpl, H5P_DEFAULT), path,
                           "H5Dcreate2", object));
  if (!ptrs.empty())
    checked(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), path, "H5Dwrite", object);
}

std::vector<std::string> read_strings(hid_t dataset, const fs::path& path, const std::string& object) {
  const Datatype type = dataset_type(dataset, path, object);
  if (H5Tget_class(type) != H5T_STRING) fail(path, object + ": expected strings, got " + type_description(type));
  const auto shape = dataset_shape(dataset, path, object);
  const size_t n = size_t(*checked_numel(shape));
  check_claimed_size(dataset, n, path, object);
  return read_string_values(type, n, path, object, [&](hid_t mem, void* buf) {
    return H5Dread(dataset, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
  });
}

bool has_attribute(hid_t obj, const std::string& name, const fs::path& path) {
  silence_errors();
  return checked(H5Aexists(obj, name.c_str()), path, "H5Aexists", "attribute " + name) > 0;
}

void write_string_attribute(hid_t obj, const std::string& name, const std::string& value, const fs::path& path) {
  const std::string what = "attribute " + name;
  check(value.find('\0') == std::string::npos, path, what + ": string contains a NUL byte");
  if (has_attribute(obj, name, path)) checked(H5Adelete(obj, name.c_str()), path, "H5Adelete", what);
  const Datatype type = vlen_string_type(H5T_CSET_UTF8, path);
  const Dataspace space = make_space({}, path, what);
  const Attribute attr(checked(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), path,
                               "H5Acreate2", what));
  const char* p = value.c_str();
  checked(H5Awrite(attr, type, &p), path, "H5Awrite", what);
}

std::string read_string_attribute(hid_t obj, const std::string& name, const fs::path& path,
                                  const std::string& object) {
  Datatype type;
  const Attribute attr = open_single_attribute(obj, name, H5T_STRING, "a string", path, object, type);
  return read_string_values(type, 1, path, "attribute '" + name + "' of " + object,
                            [&](hid_t mem, void* buf) { return H5Aread(attr, mem, buf); })[0];
}

void write_int_attribute(hid_t obj, const std::string& name, int64_t value, const fs::path& path) {
  const std::string what = "attribute " + name;
  if (has_attribute(obj, name, path)) checked(H5Adelete(obj, name.c_str()), path, "H5Adelete", what);
  const Dataspace space = make_space({}, path, what);
  const Attribute attr(checked(H5Acreate2(obj, name.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT),
                               path, "H5Acreate2", what));
  checked(H5Awrite(attr, H5T_NATIVE_INT64, &value), path, "H5Awrite", what);
}

int64_t read_int_attribute(hid_t obj, const std::string& name, const fs::path& path, const std::string& object) {
  Datatype type;
  const Attribute attr = open_single_attribute(obj, name, H5T_INTEGER, "an integer", path, object, type);
  int64_t value = 0;
  checked(H5Aread(attr, H5T_NATIVE_INT64, &value), path, "H5Aread", "attribute '" + name + "' of " + object);
  return value;
}

}  // namespace moekit::io::h5
