// Classification datasets: TSV (header row) or JSON Lines -> Examples. Every error names the file
// and the 1-based line, so a bad row in a large file can be found.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "model/config.h"

namespace moekit::io {

struct Example {
  std::string text;
  std::string text_pair;
  bool has_pair = false;
  int label = -1;  // single-label tasks: index into the model's labels; -1 = unlabeled
  // Regression: {value}; multi-label: 0/1 per model label; empty = unlabeled (or single-label).
  std::vector<float> targets;
  // Token classification (io/token_dataset.h): the words (pre-split, as CoNLL and HF datasets
  // give them; `text` is them joined by spaces) and each word's tag index; word_tags empty =
  // unlabeled.
  std::vector<std::string> words;
  std::vector<int> word_tags;
  // Question answering (io/qa_dataset.h): `text` is the question, `text_pair` the context; the
  // gold answers (texts with their byte offset in the context; several in SQuAD's dev set) and
  // whether it has gold at all (an answered question, or a SQuAD 2.0 one marked impossible).
  struct Answer {
    std::string text;
    size_t begin = 0;
  };
  bool qa = false;
  std::string qa_id;
  std::vector<Answer> answers;
  bool qa_labelled = false;
  bool labelled() const { return label >= 0 || !targets.empty() || !word_tags.empty() || qa_labelled; }
};

// Format by extension:
//  .tsv          header row naming `text`, optional `text_pair`, `label` (any order, others ignored);
//                tab-separated, no quoting; every row has the header's column count.
//  .jsonl/.json  one JSON object per line: "text", optional "text_pair", "label" (string or integer).
// What a label is depends on the model's task:
//  single_label  a name in `labels` (the model's id2label); an integer that is not a name is an index.
//  regression    a number: JSON 3.5 or "3.5", a TSV cell 3.5.
//  multi_label   a set of names (or indices) as above: a JSON array ["sports", "politics"] ([] =
//                none of them), a TSV cell sports,politics (comma-separated).
// Without a label (absent, null, empty cell) the example is unlabeled, an error if require_labels.
// Blank lines are skipped; a UTF-8 BOM is ignored. Throws Error naming file and line.
// token_classification reads io/token_dataset.h's formats instead (JSONL tokens/tags, CoNLL, .txt).
std::vector<Example> read_dataset(const std::filesystem::path& path, const std::vector<std::string>& labels,
                                  bool require_labels, Task task = Task::single_label);

// Unlabelled text for masked-LM pretraining. .txt: one text per non-blank line (UTF-8 checked,
// '\r' and a BOM removed). .tsv/.jsonl/.json: the `text` field of each example, labels ignored
// (a text pair becomes "text text_pair"). Throws Error naming file and line.
std::vector<std::string> read_texts(const std::filesystem::path& path);

// Texts (and, with pairs, their text_pair) of any dataset format, labels ignored: .txt is one text
// per non-blank line (no pairs there). With pairs every example must have a text_pair. Throws Error
// naming file and line.
std::vector<Example> read_unlabelled(const std::filesystem::path& path, bool pairs);

// Distinct label names of a labelled dataset, sorted (numerically if all are integers), as HF's
// run_glue builds a new model's label list. Every example must have a label. Multi-label: the
// names in all label sets; regression: {"LABEL_0"} (HF's name for the one output); token
// classification: the tags (io/token_dataset.h collect_tags); question answering: {"LABEL_0",
// "LABEL_1"} (start and end) once the file reads as labelled QA data.
std::vector<std::string> collect_labels(const std::filesystem::path& path, Task task = Task::single_label);

}  // namespace moekit::io
