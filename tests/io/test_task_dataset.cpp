// Dataset labels of the regression and multi-label heads: values, label sets (JSON lists and
// comma-separated TSV cells), collect_labels per task, and each bad label's error with its line.
#include <catch2/catch.hpp>

#include <fstream>

#include "io/batching.h"
#include "io/dataset.h"
#include "io/hf_config.h"
#include "model/error.h"
#include "tests/support/temp_dir.h"

using namespace moekit;
using moekit::io::collect_labels;
using moekit::io::read_dataset;
using Catch::Contains;

namespace {

std::filesystem::path write(const std::string& name, const std::string& bytes) {
  const auto dir = test::unique_scratch_dir("task_dataset");
  std::ofstream(dir / name, std::ios::binary) << bytes;
  return dir / name;
}

}  // namespace

TEST_CASE("Regression labels are numbers in JSONL and TSV", "[io][task]") {
  auto jsonl = write("r.jsonl", "{\"text\": \"a\", \"label\": 3.5}\n{\"text\": \"b\", \"label\": \"-1e-2\"}\n"
                                "{\"text\": \"c\", \"label\": 2}\n{\"text\": \"d\"}\n");
  auto ex = read_dataset(jsonl, {"LABEL_0"}, false, Task::regression);
  REQUIRE(ex.size() == 4);
  CHECK(ex[0].targets == std::vector<float>{3.5f});
  CHECK(ex[1].targets == std::vector<float>{-0.01f});
  CHECK(ex[2].targets == std::vector<float>{2.0f});
  CHECK(ex[0].label == -1);
  CHECK_FALSE(ex[3].labelled());
  CHECK_THROWS_WITH(read_dataset(jsonl, {"LABEL_0"}, true, Task::regression), Contains("line 4: missing \"label\""));
}

TEST_CASE("Regression: a label that is not a number names its line", "[io][task]") {
  auto tsv = write("r.tsv", "text\tlabel\nfine\t0.25\nbad\tfive\n");
  CHECK_THROWS_WITH(read_dataset(tsv, {"LABEL_0"}, true, Task::regression),
                    Contains("r.tsv: line 3: label 'five' is not a number"));
  auto inf = write("i.tsv", "text\tlabel\nx\tinf\n");
  CHECK_THROWS_WITH(read_dataset(inf, {"LABEL_0"}, true, Task::regression), Contains("is not a number"));
  CHECK(collect_labels(write("ok.tsv", "text\tlabel\na\t1.5\n"), Task::regression) == std::vector<std::string>{"LABEL_0"});
}

TEST_CASE("Multi-label sets: JSON lists of names or indices, TSV comma-separated cells, [] = none", "[io][task]") {
  const std::vector<std::string> labels = {"politics", "sports", "tech"};
  auto jsonl = write("m.jsonl", "{\"text\": \"a\", \"label\": [\"sports\", \"tech\"]}\n{\"text\": \"b\", \"label\": []}\n"
                                "{\"text\": \"c\", \"label\": [0]}\n");
  auto ex = read_dataset(jsonl, labels, true, Task::multi_label);
  CHECK(ex[0].targets == std::vector<float>{0, 1, 1});
  CHECK(ex[1].targets == std::vector<float>{0, 0, 0});
  CHECK(ex[1].labelled());
  CHECK(ex[2].targets == std::vector<float>{1, 0, 0});
  auto tsv = write("m.tsv", "text\tlabel\nx\ttech,politics\ny\tsports\n");
  auto t = read_dataset(tsv, labels, true, Task::multi_label);
  CHECK(t[0].targets == std::vector<float>{1, 0, 1});
  CHECK(collect_labels(tsv, Task::multi_label) == std::vector<std::string>{"politics", "sports", "tech"});
  CHECK_THROWS_WITH(read_dataset(write("u.jsonl", "{\"text\": \"a\", \"label\": [\"art\"]}\n"), labels, true,
                                 Task::multi_label),
                    Contains("line 1: unknown label 'art'"));
  CHECK_THROWS_WITH(read_dataset(jsonl, labels, true, Task::single_label),
                    Contains("line 1: \"label\" is a list, but the model's problem_type is single_label_classification"));
  CHECK_THROWS_WITH(read_dataset(write("o.jsonl", "{\"text\": \"a\", \"label\": [{}]}\n"), labels, true,
                                 Task::multi_label),
                    Contains("line 1: \"label\": expected a list of names or integers"));
}

TEST_CASE("Batches carry regression and multi-label targets row by row", "[io][task]") {
  std::vector<io::EncodedExample> ex(3);
  for (size_t i = 0; i < ex.size(); ++i) {
    ex[i].ids = {2, 5, 3};
    ex[i].type_ids = {0, 0, 0};
    ex[i].targets = {static_cast<float>(i), 1.0f};
  }
  Batch b = io::make_batch(ex, {2, 0}, 0);
  CHECK(b.labels.empty());
  CHECK(b.targets == std::vector<float>{2, 1, 0, 1});
  CHECK(b.labelled());
  ex[0].targets.clear();
  CHECK_FALSE(io::make_batch(ex, {2, 0}, 0).labelled());
}

TEST_CASE("config.json problem_type: read, written back, one label without it is regression", "[io][task]") {
  nlohmann::json j = {{"vocab_size", 10}, {"hidden_size", 8}, {"num_hidden_layers", 1}, {"num_attention_heads", 2},
                      {"intermediate_size", 16}, {"num_labels", 1}};
  CHECK(io::parse_hf_config(j, "c.json").task == Task::regression);
  j["num_labels"] = 3;
  CHECK(io::parse_hf_config(j, "c.json").task == Task::single_label);
  j["problem_type"] = "multi_label_classification";
  const BertConfig c = io::parse_hf_config(j, "c.json");
  CHECK(c.task == Task::multi_label);
  CHECK(io::hf_config_json(c)["problem_type"] == "multi_label_classification");
  j["problem_type"] = "regression";
  CHECK_THROWS_WITH(io::parse_hf_config(j, "c.json"), Contains("c.json: problem_type regression: expected num_labels 1"));
  j["problem_type"] = "ordinal";
  CHECK_THROWS_WITH(io::parse_hf_config(j, "c.json"), Contains("problem_type: unknown \"ordinal\""));
}
