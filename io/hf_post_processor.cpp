#include "io/hf_post_processor.h"

#include <nlohmann/json.hpp>

#include "io/hf_json.h"
#include "model/error.h"

namespace moekit::io {

namespace {

using hf_json::Fields;

TemplatePart special(const std::string& token, int32_t id, int32_t type_id) { return {-1, {id}, {token}, type_id}; }
TemplatePart sequence(int which, int32_t type_id) { return {which, {}, {}, type_id}; }

// "sep": ["[SEP]", 102]
std::pair<std::string, int32_t> token_and_id(const Fields& f, const char* key) {
  const auto& v = f.need(key);
  if (!v.is_array() || v.size() != 2 || !v[0].is_string() || !v[1].is_number_integer() || v[1].get<int64_t>() < 0 ||
      v[1].get<int64_t>() > INT32_MAX)
    f.fail_with(std::string("\"") + key + "\": expected [token, id]");
  return {v[0].get<std::string>(), v[1].get<int32_t>()};
}

std::vector<TemplatePart> parse_template(const Fields& f, const char* key, const nlohmann::json& specials) {
  std::vector<TemplatePart> out;
  for (const auto& piece : f.array(key)) {
    if (!piece.is_object() || piece.size() != 1) f.fail_with(std::string("\"") + key + "\": bad template piece");
    const std::string kind = piece.begin().key();
    const nlohmann::json& body = piece.begin().value();
    const Fields b{body, f.file, f.what + " " + key};
    const int64_t type_id = b.integer_or("type_id", 0);
    if (type_id < 0 || type_id > INT32_MAX) b.fail_with("type_id out of range");
    const std::string id = b.string("id");
    if (kind == "Sequence") {
      if (id != "A" && id != "B") b.fail_with("sequence id must be A or B, got \"" + id + "\"");
      out.push_back(sequence(id == "A" ? 0 : 1, static_cast<int32_t>(type_id)));
    } else if (kind == "SpecialToken") {
      auto it = specials.find(id);
      if (it == specials.end()) b.fail_with("special token \"" + id + "\" is not in special_tokens");
      const Fields s{*it, f.file, f.what + " special_tokens \"" + id + "\""};
      TemplatePart part{-1, {}, {}, static_cast<int32_t>(type_id)};
      for (const auto& v : s.array("ids")) {
        if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) s.fail_with("bad id");
        part.ids.push_back(v.get<int32_t>());
      }
      for (const auto& v : s.array("tokens")) {
        if (!v.is_string()) s.fail_with("bad token");
        part.tokens.push_back(v.get<std::string>());
      }
      if (part.ids.size() != part.tokens.size()) s.fail_with("ids and tokens differ in length");
      out.push_back(std::move(part));
    } else {
      b.fail_with("unknown template piece \"" + kind + "\"");
    }
  }
  return out;
}

}  // namespace

PostProcessor PostProcessor::none() { return {{sequence(0, 0)}, {sequence(0, 0), sequence(1, 1)}}; }

size_t PostProcessor::added(bool is_pair) const {
  size_t n = 0;
  for (const TemplatePart& p : is_pair ? pair : single) n += p.ids.size();
  return n;
}

PostProcessor parse_post_processor(const nlohmann::json& j, const std::filesystem::path& file) {
  const std::string type = hf_json::type_of(j, file, "post_processor");
  const Fields f{j, file, "post_processor " + type};
  if (type == "BertProcessing") {
    const auto [sep, sep_id] = token_and_id(f, "sep");
    const auto [cls, cls_id] = token_and_id(f, "cls");
    return {{special(cls, cls_id, 0), sequence(0, 0), special(sep, sep_id, 0)},
            {special(cls, cls_id, 0), sequence(0, 0), special(sep, sep_id, 0), sequence(1, 1), special(sep, sep_id, 1)}};
  }
  if (type == "RobertaProcessing") {  // every type id 0, "</s></s>" between the pair
    const auto [sep, sep_id] = token_and_id(f, "sep");
    const auto [cls, cls_id] = token_and_id(f, "cls");
    return {{special(cls, cls_id, 0), sequence(0, 0), special(sep, sep_id, 0)},
            {special(cls, cls_id, 0), sequence(0, 0), special(sep, sep_id, 0), special(sep, sep_id, 0), sequence(1, 0),
             special(sep, sep_id, 0)},
            f.boolean_or("trim_offsets", true),
            f.boolean_or("add_prefix_space", true)};
  }
  if (type == "TemplateProcessing") {
    const auto& specials = f.need("special_tokens");
    if (!specials.is_object()) f.fail_with("\"special_tokens\": expected an object");
    return {parse_template(f, "single", specials), parse_template(f, "pair", specials)};
  }
  if (type == "ByteLevel") {  // it trims offsets; ids and type ids are untouched
    PostProcessor p = PostProcessor::none();
    p.trim_offsets = f.boolean_or("trim_offsets", true);
    p.add_prefix_space = f.boolean_or("add_prefix_space", true);
    return p;
  }
  fail(file, "unsupported post_processor \"" + type + "\"");
}

}  // namespace moekit::io
