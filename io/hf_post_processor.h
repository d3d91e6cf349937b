// tokenizer.json "post_processor": BertProcessing, RobertaProcessing, TemplateProcessing (and
// ByteLevel, which only moves offsets), all reduced to one template: the special tokens and the
// sequences A and B, each with its type id, plus whether token offsets lose their byte-level spaces.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace moekit::io {

struct TemplatePart {
  int sequence = -1;               // 0 = A, 1 = B, -1 = special tokens
  std::vector<int32_t> ids;        // special: its ids
  std::vector<std::string> tokens; // special: their text
  int32_t type_id = 0;
};

struct PostProcessor {
  std::vector<TemplatePart> single, pair;
  // RobertaProcessing / ByteLevel trim_offsets: offsets skip a token's leading and trailing
  // spaces ("Ġ"), except the one add_prefix_space put before the first token (byte_level.rs process_offsets).
  bool trim_offsets = false, add_prefix_space = false;
  // No post-processor: A then B, no special tokens; B keeps type id 1 (the pair's own).
  static PostProcessor none();
  size_t added(bool is_pair) const;  // special tokens the template adds
};

PostProcessor parse_post_processor(const nlohmann::json& j, const std::filesystem::path& file);

}  // namespace moekit::io
