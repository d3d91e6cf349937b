// libFuzzer target: the compact HDF5 export (io::read_compact): checksum block first, then libhdf5
// and moekit's checks (see skip_unverified_hdf5 for plain HDF5 inputs).
#include "fuzz/fuzz_util.h"
#include "io/compact.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (moekit::fuzz::skip_unverified_hdf5(data, size)) return 0;
  const auto path = moekit::fuzz::input_file(data, size, "model.h5");
  moekit::fuzz::expect_error_or_success([&] { moekit::io::read_compact(path); });
  return 0;
}
