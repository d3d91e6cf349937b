#include "io/hf_tokenizer.h"

#include <algorithm>
#include <array>

#include "io/unicode_text.h"
#include "model/error.h"

namespace moekit::io {

namespace {

struct Segment {
  size_t begin, end;
  int added = -1;  // index into the added tokens, or -1 for text
};

bool ends_with_word(const std::string& s, size_t end) {
  if (end == 0) return false;
  size_t b = end - 1;
  while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  return text::is_word(text::decode(s.substr(b, end - b))[0]);
}

bool starts_with_word(const std::string& s, size_t begin) {
  if (begin >= s.size()) return false;
  const size_t len = static_cast<size_t>(text::utf8_length(static_cast<unsigned char>(s[begin])));
  return text::is_word(text::decode(s.substr(begin, len))[0]);
}

// Start of the whitespace run ending at `end` / end of the run starting at `begin` (regex \s).
size_t whitespace_back(const std::string& s, size_t end) {
  while (end > 0) {
    size_t b = end - 1;
    while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
    if (!text::is_whitespace(text::decode(s.substr(b, end - b))[0])) break;
    end = b;
  }
  return end;
}

size_t whitespace_forward(const std::string& s, size_t begin) {
  while (begin < s.size()) {
    const size_t len = static_cast<size_t>(text::utf8_length(static_cast<unsigned char>(s[begin])));
    if (!text::is_whitespace(text::decode(s.substr(begin, len))[0])) break;
    begin += len;
  }
  return begin;
}

void truncate(Encoding& e, size_t n, bool left) {
  if (e.ids.size() <= n) return;
  auto cut = [&](auto& v) {
    if (left) v.erase(v.begin(), v.end() - static_cast<std::ptrdiff_t>(n));
    else v.resize(n);
  };
  cut(e.ids), cut(e.type_ids), cut(e.tokens), cut(e.special), cut(e.offsets);
}

// byte_level.rs process_offsets: leading and trailing spaces ("Ġ" or whitespace) leave the offsets,
// except the single space add_prefix_space put before the first token.
void trim_byte_level_offsets(Encoding& e, bool add_prefix_space) {
  static const std::string kSpace = byte_level_char(' ');  // "Ġ"
  // Length of the space character at t[at], or 0 when t[at] starts something else.
  auto space_at = [](const std::string& t, size_t at) -> size_t {
    if (t.compare(at, kSpace.size(), kSpace) == 0) return kSpace.size();
    const size_t len = static_cast<size_t>(text::utf8_length(static_cast<unsigned char>(t[at])));
    return text::is_whitespace(text::decode(t.substr(at, len))[0]) ? len : 0;
  };
  for (size_t i = 0; i < e.tokens.size(); ++i) {
    const std::string& t = e.tokens[i];
    size_t leading = 0, trailing = 0;  // in characters; each stands for one byte of the input
    for (size_t at = 0, n = 0; at < t.size() && (n = space_at(t, at)) > 0; at += n) ++leading;
    for (size_t end = t.size(); end > 0; ++trailing) {
      size_t b = end - 1;
      while (b > 0 && (static_cast<unsigned char>(t[b]) & 0xC0) == 0x80) --b;
      if (space_at(t, b) == 0) break;
      end = b;
    }
    auto& [start, stop] = e.offsets[i];
    if (leading > 0) {
      if ((i == 0 || start == 0) && add_prefix_space && leading == 1) leading = 0;
      start = std::min(start + leading, stop);
    }
    if (trailing > 0 && stop >= trailing) stop = std::max(stop - trailing, start);
  }
}

}  // namespace

HfTokenizer::HfTokenizer(std::unique_ptr<TokenModel> model, std::optional<Normalizer> normalizer,
                         std::optional<PreTokenizer> pre_tokenizer, PostProcessor post, std::vector<AddedToken> added,
                         std::string source)
    : model_(std::move(model)),
      normalizer_(std::move(normalizer)),
      pre_tokenizer_(std::move(pre_tokenizer)),
      post_(std::move(post)),
      added_(std::move(added)),
      source_(std::move(source)) {
  for (AddedToken& t : added_) {
    // The Rust library gives an added token the model's id for its content when there is one.
    if (const int32_t id = model_->token_to_id(t.content); id >= 0) t.id = id;
    // Normalized added tokens are matched in normalized text, so their content is normalized too.
    if (t.normalized && normalizer_) t.content = (*normalizer_)(t.content);
  }
  added_.erase(std::remove_if(added_.begin(), added_.end(), [](const AddedToken& t) { return t.content.empty(); }),
               added_.end());
  std::stable_sort(added_.begin(), added_.end(),
                   [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
}

// added_vocabulary.rs find_matches: leftmost-longest matches of one class of added tokens
// (normalized or not); a match that fails single_word is skipped whole, as the automaton does.
static std::vector<Segment> find_added(const std::string& s, const std::vector<AddedToken>& added, bool normalized) {
  std::vector<Segment> out;
  size_t start_offset = 0, pos = 0;
  while (pos < s.size()) {
    int hit = -1;
    for (size_t k = 0; k < added.size(); ++k) {
      const AddedToken& t = added[k];
      if (t.normalized == normalized && s.compare(pos, t.content.size(), t.content) == 0) {
        hit = static_cast<int>(k);
        break;  // longest first
      }
    }
    if (hit < 0) {
      ++pos;
      continue;
    }
    const AddedToken& t = added[static_cast<size_t>(hit)];
    size_t start = pos, stop = pos + t.content.size();
    pos = stop;
    if (t.single_word && ((start > 0 && ends_with_word(s, start)) || (stop < s.size() && starts_with_word(s, stop))))
      continue;
    if (t.lstrip) start = std::max(whitespace_back(s, start), start_offset);
    if (t.rstrip) stop = whitespace_forward(s, stop);
    if (start_offset < start) out.push_back({start_offset, start, -1});
    out.push_back({start, stop, hit});
    start_offset = stop;
    pos = stop;
  }
  if (start_offset < s.size() || out.empty()) out.push_back({start_offset, s.size(), -1});
  return out;
}

std::vector<Token> HfTokenizer::tokens_of(const std::string& input) const {
  text::decode(input);  // validates the UTF-8 once
  std::vector<Token> out;
  for (const Segment& raw : find_added(input, added_, false)) {
    if (raw.added >= 0) {
      // the matched text, stripped spaces included, as added_vocabulary.rs reports it
      out.push_back({added_[static_cast<size_t>(raw.added)].id, input.substr(raw.begin, raw.end - raw.begin), raw.begin, raw.end});
      continue;
    }
    if (raw.end == raw.begin) continue;
    AlignedText normalized = AlignedText::original(input.substr(raw.begin, raw.end - raw.begin), raw.begin);
    if (normalizer_) (*normalizer_)(normalized);
    for (const Segment& seg : find_added(normalized.text, added_, true)) {
      if (seg.added >= 0) {
        const Span at = normalized.original_span(seg.begin, seg.end);
        out.push_back({added_[static_cast<size_t>(seg.added)].id, normalized.text.substr(seg.begin, seg.end - seg.begin),
                       at.begin, at.end});
        continue;
      }
      if (seg.end == seg.begin) continue;
      Pieces pieces{{normalized.slice(seg.begin, seg.end), raw.begin == 0 && seg.begin == 0}};
      if (pre_tokenizer_) (*pre_tokenizer_)(pieces);
      for (const Piece& p : pieces) {
        if (p.text.text.empty()) continue;
        const size_t first = out.size();
        model_->tokenize(p.text.text, out);
        for (size_t k = first; k < out.size(); ++k) {  // piece bytes -> the input's bytes
          const size_t end = std::min(out[k].end, p.text.text.size());
          const Span at = p.text.original_span(std::min(out[k].begin, end), end);
          out[k].begin = at.begin, out[k].end = at.end;
        }
      }
    }
  }
  return out;
}

Encoding HfTokenizer::encode_sequence(const std::string& text, int32_t type_id) const {
  Encoding e;
  for (Token& t : tokens_of(text)) {
    e.ids.push_back(t.id);
    e.tokens.push_back(std::move(t.text));
    e.offsets.emplace_back(t.begin, t.end);
  }
  e.type_ids.assign(e.ids.size(), type_id);
  e.special.assign(e.ids.size(), 0);
  for (size_t i = 0; i < e.ids.size(); ++i)
    for (const AddedToken& a : added_)
      if (a.special && a.id == e.ids[i]) e.special[i] = 1;
  return e;
}

Encoding HfTokenizer::encode_plain(const std::string& text) const {
  Encoding e = encode_sequence(text, 0);
  if (post_.trim_offsets) trim_byte_level_offsets(e, post_.add_prefix_space);  // the Rust post_process runs it too
  return e;
}

Encoding HfTokenizer::encode(const std::string& text, const std::string* text_pair, int max_len) const {
  const size_t n_added = post_.added(text_pair != nullptr);
  if (max_len < 0 || static_cast<size_t>(max_len) < n_added)
    fail("", "max_len " + std::to_string(max_len) + " leaves no room for the " + std::to_string(n_added) +
                 " special tokens; expected max_len >= " + std::to_string(n_added));
  Encoding a = encode_sequence(text, 0), b;
  if (text_pair) b = encode_sequence(*text_pair, 1);

  // utils/truncation.rs truncate_encodings with max_length = max_len - special tokens.
  const size_t budget = static_cast<size_t>(max_len) - n_added;
  const size_t total = a.ids.size() + b.ids.size();
  if (total > budget) {
    if (budget == 0) {
      truncate(a, 0, truncate_left), truncate(b, 0, truncate_left);
    } else if (truncation == TruncationStrategy::longest_first) {
      if (!text_pair) {
        truncate(a, budget, truncate_left);
      } else {
        size_t n1 = a.ids.size(), n2 = b.ids.size();
        const bool swap = n1 > n2;
        if (swap) std::swap(n1, n2);
        n2 = n1 > budget ? n1 : std::max(n1, budget - n1);
        if (n1 + n2 > budget) {
          n1 = budget / 2;
          n2 = n1 + budget % 2;
        }
        if (swap) std::swap(n1, n2);
        truncate(a, n1, truncate_left), truncate(b, n2, truncate_left);
      }
    } else {
      const bool first = truncation == TruncationStrategy::only_first;
      if (!first && !text_pair) fail("", "truncation only_second needs a pair of texts");
      Encoding& target = first ? a : b;
      const size_t remove = total - budget;
      if (target.ids.size() <= remove)
        fail("", std::string("truncation ") + (first ? "only_first" : "only_second") + ": the " +
                     (first ? "first" : "second") + " text is too short to remove " + std::to_string(remove) + " tokens");
      truncate(target, target.ids.size() - remove, truncate_left);
    }
  }

  if (post_.trim_offsets) {
    trim_byte_level_offsets(a, post_.add_prefix_space);
    if (text_pair) trim_byte_level_offsets(b, post_.add_prefix_space);
  }
  Encoding out;
  for (const TemplatePart& part : text_pair ? post_.pair : post_.single) {
    if (part.sequence < 0) {
      out.ids.insert(out.ids.end(), part.ids.begin(), part.ids.end());
      out.tokens.insert(out.tokens.end(), part.tokens.begin(), part.tokens.end());
      out.type_ids.insert(out.type_ids.end(), part.ids.size(), part.type_id);
      out.special.insert(out.special.end(), part.ids.size(), 1);
      out.offsets.insert(out.offsets.end(), part.ids.size(), {0, 0});
      continue;
    }
    const Encoding& e = part.sequence == 0 ? a : b;
    out.ids.insert(out.ids.end(), e.ids.begin(), e.ids.end());
    out.tokens.insert(out.tokens.end(), e.tokens.begin(), e.tokens.end());
    out.type_ids.insert(out.type_ids.end(), e.ids.size(), part.type_id);
    out.special.insert(out.special.end(), e.special.begin(), e.special.end());
    out.offsets.insert(out.offsets.end(), e.offsets.begin(), e.offsets.end());
  }
  return out;
}

int64_t HfTokenizer::id_limit() const {
  int64_t limit = model_->id_limit();
  for (const AddedToken& t : added_) limit = std::max<int64_t>(limit, int64_t{t.id} + 1);
  for (const auto* parts : {&post_.single, &post_.pair})
    for (const TemplatePart& p : *parts)
      for (int32_t id : p.ids) limit = std::max<int64_t>(limit, int64_t{id} + 1);
  return limit;
}

int32_t HfTokenizer::token_id(const std::string& token) const {
  for (const AddedToken& t : added_)
    if (t.content == token) return t.id;
  return model_->token_to_id(token);
}

}  // namespace moekit::io
