// A generated classification task a small BERT can learn: every sentence holds filler words and
// exactly one keyword; the keyword decides the label. Used by trainer and pipeline tests.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "io/vocab.h"

namespace moekit::test {

// [PAD] [UNK] [CLS] [SEP] [MASK], three keywords, 40 filler words.
io::Vocab synthetic_vocab();

// Writes `n` labelled examples (TSV: label, text) with labels "red", "green", "blue".
void write_keyword_task(const std::filesystem::path& tsv, int n, uint64_t seed);

}  // namespace moekit::test
