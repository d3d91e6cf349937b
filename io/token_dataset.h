// Token-classification (NER) datasets: words with one tag each -> io::Example (words, word_tags).
// Every error names the file and the 1-based line.
#pragma once
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "io/dataset.h"

namespace moekit::io {

// A word of a text split at whitespace, with its byte range [begin, end) in the text.
struct WordSpan {
  std::string text;
  size_t begin = 0, end = 0;
};
// Splits at ASCII whitespace (space, tab, newline, CR, FF, VT), as str.split() does for ASCII.
std::vector<WordSpan> split_words(const std::string& text);

// Formats by extension:
//  .jsonl/.json  one object per line: "tokens": ["EU", "rejects", ...] and "tags" (or HF datasets'
//                "ner_tags"): names, or integer indices into `labels`, one per token. Without
//                tags the example is unlabeled. "text" instead of "tokens" is split at whitespace.
//  .conll        one token per line, whitespace-separated columns: the word first, its tag last
//                (CoNLL-2003's four columns, or just "word tag"; a single column = unlabeled); a
//                blank line ends a sentence; -DOCSTART- lines are skipped.
//  .txt          one unlabeled text per non-blank line, split at whitespace.
// Tags are resolved by name against `labels` (an integer that is no name is an index).
std::vector<Example> read_token_dataset(const std::filesystem::path& path, const std::vector<std::string>& labels,
                                        bool require_labels);

// The distinct tags of a labelled token dataset, sorted (byte order), for a new model's labels.
// Every example must be labelled, and every tag must be IOB2 ("O", "B-TYPE", "I-TYPE"), the scheme
// the entity metrics (distill/metrics.h) read.
std::vector<std::string> collect_tags(const std::filesystem::path& path);

// Whether `tag` is "O", "B-..." or "I-..." with a non-empty type.
bool is_iob2_tag(const std::string& tag);

}  // namespace moekit::io
