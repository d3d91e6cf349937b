// importance.h5: /importance/layer_<i> float32 [intermediate_size] (empty layers omitted) and
// root attributes format="moekit-importance", model, data, examples, layers. Readable with h5py.
#include <filesystem>

#include "compress/importance.h"
#include "io/atomic_file.h"
#include "io/h5_checksum.h"
#include "io/hdf5.h"
#include "model/error.h"

namespace moekit::compress {

namespace fs = std::filesystem;

void write_importance(const fs::path& path, const Importance& imp, const std::string& model_path,
                      const std::string& data_path) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  const fs::path tmp = io::temp_sibling(path);
  try {
    {
      io::h5::File file = io::h5::create_file(tmp, io::kChecksumBlockBytes);
      io::h5::write_string_attribute(file.get(), "format", "moekit-importance", tmp);
      io::h5::write_string_attribute(file.get(), "model", model_path, tmp);
      io::h5::write_string_attribute(file.get(), "data", data_path, tmp);
      io::h5::write_int_attribute(file.get(), "examples", imp.examples, tmp);
      io::h5::write_int_attribute(file.get(), "layers", static_cast<int64_t>(imp.layers.size()), tmp);
      io::h5::Group group = io::h5::create_group(file.get(), "importance", tmp);
      for (size_t l = 0; l < imp.layers.size(); ++l) {
        if (imp.layers[l].empty()) continue;
        std::vector<float> values(imp.layers[l].begin(), imp.layers[l].end());
        io::h5::write_dataset(group.get(), "layer_" + std::to_string(l), H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                              {static_cast<int64_t>(values.size())}, values.data(), tmp);
      }
    }
    io::seal_hdf5_checksum(tmp);
    fs::rename(tmp, path);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
}

Importance read_importance(const fs::path& path) {
  if (!fs::is_regular_file(path)) fail(path, "no such importance file");
  Importance imp;
  imp.verified = io::verify_hdf5_checksum(path) == io::Integrity::verified;  // before libhdf5 reads it
  io::h5::File file = io::h5::open_file(path);
  const std::string format = io::h5::read_string_attribute(file.get(), "format", path, "/");
  if (format != "moekit-importance") fail(path, "format is \"" + format + "\", expected moekit-importance");
  imp.examples = io::h5::read_int_attribute(file.get(), "examples", path, "/");
  const int64_t layers = io::h5::read_int_attribute(file.get(), "layers", path, "/");
  if (layers < 0 || layers > 100000) fail(path, "implausible layer count " + std::to_string(layers));
  imp.layers.resize(static_cast<size_t>(layers));
  io::h5::Group group = io::h5::open_group(file.get(), "importance", path);
  for (int64_t l = 0; l < layers; ++l) {
    const std::string name = "layer_" + std::to_string(l);
    if (!io::h5::link_exists(group.get(), name, path)) continue;
    io::h5::Dataset ds = io::h5::open_dataset(group.get(), name, path);
    const auto shape = io::h5::dataset_shape(ds.get(), path, "/importance/" + name);
    if (shape.size() != 1) fail(path, "/importance/" + name + ": expected a 1-D dataset");
    const auto bytes = io::h5::read_dataset(ds.get(), H5T_NATIVE_FLOAT, path, "/importance/" + name);
    const float* v = reinterpret_cast<const float*>(bytes.data());
    imp.layers[static_cast<size_t>(l)].assign(v, v + shape[0]);
  }
  return imp;
}

}  // namespace moekit::compress
