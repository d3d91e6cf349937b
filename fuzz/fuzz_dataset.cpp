// libFuzzer target: TSV and JSON Lines datasets (io::read_dataset, io::collect_labels). The first
// byte picks the format (bit 0), whether labels are required (bit 1) and the task head (bits 2-3:
// single-label, regression, multi-label); the rest is the file.
#include "fuzz/fuzz_util.h"
#include "io/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const char* name = data[0] & 1 ? "data.jsonl" : "data.tsv";
  const auto path = moekit::fuzz::input_file(data + 1, size - 1, name);
  const auto task = static_cast<moekit::Task>((data[0] >> 2) % 3);
  const std::vector<std::string> labels =
      task == moekit::Task::regression ? std::vector<std::string>{"LABEL_0"} : std::vector<std::string>{"neg", "pos", "neu"};
  moekit::fuzz::expect_error_or_success([&] { moekit::io::read_dataset(path, labels, data[0] & 2, task); });
  moekit::fuzz::expect_error_or_success([&] { moekit::io::collect_labels(path, task); });
  return 0;
}
