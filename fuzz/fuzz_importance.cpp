// libFuzzer target: importance.h5 (compress::read_importance), checksummed like the compact file
// (see skip_unverified_hdf5 for plain HDF5 inputs).
#include "compress/importance.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (moekit::fuzz::skip_unverified_hdf5(data, size)) return 0;
  const auto path = moekit::fuzz::input_file(data, size, "importance.h5");
  moekit::fuzz::expect_error_or_success([&] { moekit::compress::read_importance(path); });
  return 0;
}
