// libFuzzer target: TSV and JSON Lines datasets (io::read_dataset, io::collect_labels). The first
// byte picks the format; the rest is the file.
#include "fuzz/fuzz_util.h"
#include "io/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const char* name = data[0] & 1 ? "data.jsonl" : "data.tsv";
  const auto path = moekit::fuzz::input_file(data + 1, size - 1, name);
  moekit::fuzz::expect_error_or_success([&] { moekit::io::read_dataset(path, {"neg", "pos", "neu"}, data[0] & 2); });
  moekit::fuzz::expect_error_or_success([&] { moekit::io::collect_labels(path); });
  return 0;
}
