// Extractive question answering data (SQuAD v1.1 / v2.0) -> io::Example with qa set: text = the
// question, text_pair = the context, answers with their byte offsets in the context.
//  .json   SQuAD's own file: {"data": [{"paragraphs": [{"context": ..., "qas": [{"id", "question",
//          "answers": [{"text", "answer_start"}], "is_impossible"}]}]}]} (at most kMaxSquadBytes)
//  .jsonl  one question a line as Hugging Face datasets writes squad / squad_v2: {"id", "question",
//          "context", "answers": {"text": [...], "answer_start": [...]}} (a list of {"text",
//          "answer_start"} objects works too)
// answer_start counts Unicode code points (Python string offsets), as SQuAD does; the answer text
// must be there in the context. A question with no answers is SQuAD 2.0's unanswerable one (it
// counts as labelled); without an "answers" field the question is unlabelled. Errors name the
// file and the line (JSONL) or the question id (JSON).
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "io/dataset.h"

namespace moekit::io {

constexpr size_t kMaxSquadBytes = size_t{1} << 30;

std::vector<Example> read_qa_dataset(const std::filesystem::path& path, bool require_labels);

// The byte offset of code point `cp` in UTF-8 `text` (text.size() when cp is the end), or npos
// when the text has fewer code points.
size_t byte_offset_of_code_point(const std::string& text, size_t cp);
// The inverse: code points in text[0, byte) (every byte that is not a UTF-8 continuation byte).
int64_t code_points_before(const std::string& text, size_t byte);

}  // namespace moekit::io
