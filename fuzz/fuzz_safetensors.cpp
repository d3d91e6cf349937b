// libFuzzer target: io::read_safetensors on arbitrary bytes.
#include "fuzz/fuzz_util.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = moekit::fuzz::input_file(data, size, "model.safetensors");
  moekit::fuzz::expect_error_or_success([&] { moekit::io::read_safetensors(path); });
  return 0;
}
