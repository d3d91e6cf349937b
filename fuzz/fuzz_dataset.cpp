// libFuzzer target: TSV and JSON Lines datasets (io::read_dataset, io::collect_labels) and the
// token-classification and question-answering formats. The first byte picks the task head
// ((byte >> 2) % 5: single-label, regression, multi-label, token classification, question
// answering), the format (bit 0: JSONL, else TSV, for tokens CoNLL, for QA SQuAD .json) and
// whether labels are required (bit 1); the rest is the file.
#include "fuzz/fuzz_util.h"
#include "io/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto task = static_cast<moekit::Task>((data[0] >> 2) % 5);
  const bool tokens = task == moekit::Task::token_classification;
  const bool qa = task == moekit::Task::question_answering;
  const char* name = data[0] & 1 ? "data.jsonl" : tokens ? "data.conll" : qa ? "data.json" : "data.tsv";
  const auto path = moekit::fuzz::input_file(data + 1, size - 1, name);
  const std::vector<std::string> labels = task == moekit::Task::regression ? std::vector<std::string>{"LABEL_0"}
                                          : tokens ? std::vector<std::string>{"B-PER", "I-PER", "O"}
                                                   : std::vector<std::string>{"neg", "pos", "neu"};
  moekit::fuzz::expect_error_or_success([&] { moekit::io::read_dataset(path, labels, data[0] & 2, task); });
  moekit::fuzz::expect_error_or_success([&] { moekit::io::collect_labels(path, task); });
  return 0;
}
