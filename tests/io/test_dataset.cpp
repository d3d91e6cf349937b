// Dataset readers: TSV and JSONL, labels by name and by index, and every malformed-row error
// naming the file and its line.
#include <catch2/catch.hpp>

#include <fstream>
#include <random>

#include "io/dataset.h"
#include "model/error.h"
#include "tests/support/temp_dir.h"

using moekit::Error;
using moekit::io::collect_labels;
using moekit::io::Example;
using moekit::io::read_dataset;
using Catch::Contains;

namespace {

namespace fs = std::filesystem;

struct DataDir {
  fs::path path = moekit::test::unique_scratch_dir("dataset");
  fs::path write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path / name, std::ios::binary) << bytes;
    return path / name;
  }
};

const std::vector<std::string> kLabels = {"neg", "pos"};

}  // namespace

TEST_CASE("TSV: any column order, extra columns ignored, labels by name or index", "[io]") {
  DataDir dir;
  auto file = dir.write("train.tsv",
                        "id\tlabel\ttext_pair\ttext\r\n"
                        "1\tpos\tsecond a\tfirst a\r\n"
                        "\n"
                        "2\t0\t\tfirst b\n"
                        "3\tneg\tsecond c\tfirst c");
  std::vector<Example> ex = read_dataset(file, kLabels, true);
  REQUIRE(ex.size() == 3);
  CHECK(ex[0].text == "first a");
  CHECK(ex[0].text_pair == "second a");
  CHECK(ex[0].has_pair);
  CHECK(ex[0].label == 1);
  CHECK(ex[1].label == 0);  // "0" is not a label name, so it is an index
  CHECK(ex[1].text_pair.empty());
  CHECK(ex[2].label == 0);
}

TEST_CASE("TSV: an integer cell that names a label is the name", "[io]") {
  DataDir dir;
  auto file = dir.write("d.tsv", "text\tlabel\nx\t1\ny\t0\n");
  std::vector<Example> ex = read_dataset(file, {"1", "0"}, true);
  CHECK(ex[0].label == 0);
  CHECK(ex[1].label == 1);
}

TEST_CASE("TSV without labels is read unlabeled unless labels are required", "[io]") {
  DataDir dir;
  auto file = dir.write("d.tsv", "\xEF\xBB\xBFtext\nhello\nworld\n");  // with a UTF-8 BOM
  std::vector<Example> ex = read_dataset(file, kLabels, false);
  REQUIRE(ex.size() == 2);
  CHECK(ex[0].text == "hello");
  CHECK(ex[0].label == -1);
  CHECK_FALSE(ex[0].has_pair);
  CHECK_THROWS_WITH(read_dataset(file, kLabels, true),
                    Contains("d.tsv") && Contains("line 1") && Contains("missing column 'label'"));
  auto empty_cell = dir.write("e.tsv", "text\tlabel\nhello\tpos\nworld\t\n");
  CHECK(read_dataset(empty_cell, kLabels, false)[1].label == -1);
  CHECK_THROWS_WITH(read_dataset(empty_cell, kLabels, true),
                    Contains("e.tsv") && Contains("line 3") && Contains("missing label"));
}

TEST_CASE("JSONL: string and integer labels, optional pair, null label", "[io]") {
  DataDir dir;
  auto file = dir.write("d.jsonl",
                        "{\"text\": \"a\", \"label\": \"pos\"}\n"
                        "\n"
                        "{\"text\": \"b\", \"text_pair\": \"c\", \"label\": 0, \"extra\": [1]}\n"
                        "{\"label\": \"neg\", \"text\": \"d \\u00e9\"}\n");
  std::vector<Example> ex = read_dataset(file, kLabels, true);
  REQUIRE(ex.size() == 3);
  CHECK(ex[0].label == 1);
  CHECK_FALSE(ex[0].has_pair);
  CHECK(ex[1].text_pair == "c");
  CHECK(ex[1].has_pair);
  CHECK(ex[1].label == 0);
  CHECK(ex[2].text == "d \u00e9");
  auto unlabeled = dir.write("u.json", "{\"text\": \"a\", \"label\": null}\n{\"text\": \"b\"}\n");
  CHECK(read_dataset(unlabeled, kLabels, false)[0].label == -1);
  CHECK_THROWS_WITH(read_dataset(unlabeled, kLabels, true),
                    Contains("u.json") && Contains("line 1") && Contains("missing \"label\""));
}

TEST_CASE("TSV errors name the file and line", "[io][corrupt]") {
  DataDir dir;
  CHECK_THROWS_WITH(read_dataset(dir.write("a.tsv", "label\tsentence\npos\thi\n"), kLabels, true),
                    Contains("a.tsv") && Contains("line 1") && Contains("missing column 'text'"));
  CHECK_THROWS_WITH(
      read_dataset(dir.write("b.tsv", "text\tlabel\nhi\tpos\n\nhi\tpos\textra\n"), kLabels, true),
      Contains("b.tsv") && Contains("line 4") && Contains("expected 2") && Contains("got 3"));
  CHECK_THROWS_WITH(read_dataset(dir.write("c.tsv", "text\tlabel\nhi\tpos\nhi\tneutral\n"),
                                 {"l0", "l1", "l2", "l3", "l4", "l5", "l6"}, true),
                    Contains("c.tsv") && Contains("line 2") && Contains("unknown label 'pos'") &&
                        Contains("l0, l1, l2, l3, l4, ...") && Contains("7 in total"));
  CHECK_THROWS_WITH(read_dataset(dir.write("d.tsv", "text\tlabel\nhi\tpos\nhi\tneutral\n"), kLabels, true),
                    Contains("line 3") && Contains("unknown label 'neutral'") && Contains("neg, pos"));
  CHECK_THROWS_WITH(read_dataset(dir.write("e.tsv", "text\tlabel\nhi\t1\nhi\t2\n"), kLabels, true),
                    Contains("e.tsv") && Contains("line 3") && Contains("label index 2 out of range"));
  CHECK_THROWS_WITH(read_dataset(dir.write("f.tsv", "text\tlabel\nhi\t-1\n"), kLabels, true),
                    Contains("line 2") && Contains("out of range"));
  CHECK_THROWS_WITH(read_dataset(dir.write("g.tsv", "text\tlabel\n\n"), kLabels, true),
                    Contains("g.tsv") && Contains("empty dataset"));
  CHECK_THROWS_WITH(read_dataset(dir.write("h.tsv", ""), kLabels, true), Contains("empty dataset"));
  CHECK_THROWS_WITH(read_dataset(dir.write("i.tsv", "text\tlabel\nh\xC3(\tpos\n"), kLabels, true),
                    Contains("i.tsv") && Contains("line 2") && Contains("invalid UTF-8"));
  CHECK_THROWS_WITH(read_dataset(dir.write("j.tsv", "text\ttext\tlabel\n"), kLabels, true),
                    Contains("line 1") && Contains("duplicate column 'text'"));
}

TEST_CASE("JSONL errors name the file and line", "[io][corrupt]") {
  DataDir dir;
  const std::string good = "{\"text\": \"a\", \"label\": \"pos\"}\n";
  CHECK_THROWS_WITH(read_dataset(dir.write("a.jsonl", good + "{\"text\": \"b\", \n"), kLabels, true),
                    Contains("a.jsonl") && Contains("line 2") && Contains("invalid JSON"));
  // A number too large for a double is nlohmann's out_of_range, not a parse_error (found by
  // fuzz_dataset, which fed "999e99999999": it escaped as a non-moekit exception).
  CHECK_THROWS_WITH(read_dataset(dir.write("n.jsonl", good + "{\"text\": \"b\", \"label\": 1e999}\n"), kLabels, true),
                    Contains("n.jsonl") && Contains("line 2") && Contains("invalid JSON: number overflow parsing '1e999'"));
  CHECK_THROWS_AS(read_dataset(dir.write("n2.jsonl", "999e99999999\n"), kLabels, false), Error);
  CHECK_THROWS_WITH(read_dataset(dir.write("b.jsonl", good + good + "{\"label\": \"pos\"}\n"), kLabels, true),
                    Contains("b.jsonl") && Contains("line 3") && Contains("missing \"text\""));
  CHECK_THROWS_WITH(read_dataset(dir.write("c.jsonl", good + "{\"text\": 5}\n"), kLabels, true),
                    Contains("line 2") && Contains("\"text\": expected a string, got number"));
  CHECK_THROWS_WITH(read_dataset(dir.write("d.jsonl", good + "{\"text\": \"b\", \"label\": \"meh\"}\n"),
                                 kLabels, true),
                    Contains("d.jsonl") && Contains("line 2") && Contains("unknown label 'meh'") &&
                        Contains("neg, pos"));
  CHECK_THROWS_WITH(read_dataset(dir.write("e.jsonl", "\n" + good + "{\"text\": \"b\", \"label\": 5}\n"),
                                 kLabels, true),
                    Contains("e.jsonl") && Contains("line 3") && Contains("label index 5 out of range"));
  CHECK_THROWS_WITH(read_dataset(dir.write("f.jsonl", good + "{\"text\": \"b\", \"label\": 1.5}\n"),
                                 kLabels, true),
                    Contains("line 2") && Contains("expected a label name or an integer index, got the number 1.5"));
  CHECK_THROWS_WITH(read_dataset(dir.write("g.json", "[{\"text\": \"a\"}]\n"), kLabels, true),
                    Contains("g.json") && Contains("line 1") && Contains("expected a JSON object"));
  CHECK_THROWS_WITH(read_dataset(dir.write("h.jsonl", "\n \n"), kLabels, true),
                    Contains("h.jsonl") && Contains("empty dataset"));
  CHECK_THROWS_WITH(read_dataset(dir.write("i.csv", "text,label\n"), kLabels, true),
                    Contains("i.csv") && Contains("unknown dataset format"));
  CHECK_THROWS_WITH(read_dataset(dir.path / "missing.tsv", kLabels, true),
                    Contains("missing.tsv") && Contains("cannot open"));
  CHECK_THROWS_AS(read_dataset(dir.write("k.jsonl", good), {}, true), Error);
}

TEST_CASE("collect_labels returns the distinct labels sorted", "[io]") {
  DataDir dir;
  auto names = dir.write("n.tsv", "text\tlabel\na\tpos\nb\tneg\nc\tpos\nd\tneutral\n");
  CHECK(collect_labels(names) == std::vector<std::string>{"neg", "neutral", "pos"});
  auto numbers = dir.write("i.jsonl", "{\"text\": \"a\", \"label\": 10}\n{\"text\": \"b\", \"label\": 2}\n"
                                      "{\"text\": \"c\", \"label\": \"2\"}\n");
  std::vector<std::string> labels = collect_labels(numbers);
  CHECK(labels == std::vector<std::string>{"2", "10"});  // numeric, not "10" < "2"
  CHECK(read_dataset(numbers, labels, true)[0].label == 1);  // 10 is the name "10"
  CHECK_THROWS_WITH(collect_labels(dir.write("u.tsv", "text\tlabel\na\tpos\nb\t\n")),
                    Contains("u.tsv") && Contains("line 3") && Contains("missing label"));
}
