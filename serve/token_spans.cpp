#include "serve/token_spans.h"

#include <algorithm>

#include <utf8proc.h>

namespace moekit::serve {

std::string utf8_lossy(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  for (size_t i = 0; i < s.size();) {
    utf8proc_int32_t cp = 0;
    const utf8proc_ssize_t n = utf8proc_iterate(p + i, static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
    if (n <= 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    out.append(s, i, static_cast<size_t>(n));
    i += static_cast<size_t>(n);
  }
  return out;
}

nlohmann::json token_spans(const io::Encoding& enc, const std::string& input) {
  nlohmann::json tokens = nlohmann::json::array();
  for (size_t k = 0; k < enc.ids.size(); ++k) {
    // TEI's "special" is the Rust special_tokens_mask: 1 only for the post-processor's tokens (the
    // ones without a place in the input, offsets (0, 0)); an added special token found in the text
    // ("[MASK]" in "a [MASK] b") has mask 0 there, so it is text with its offsets.
    const bool special = enc.special[k] != 0 && enc.offsets.at(k) == std::pair<size_t, size_t>{0, 0};
    if (special) {
      tokens.push_back({{"id", enc.ids[k]}, {"text", enc.tokens[k]}, {"special", true}, {"start", nullptr}, {"stop", nullptr}});
      continue;
    }
    const size_t start = std::min(enc.offsets.at(k).first, input.size());
    const size_t stop = std::clamp(enc.offsets.at(k).second, start, input.size());
    tokens.push_back({{"id", enc.ids[k]},
                      {"text", utf8_lossy(input.substr(start, stop - start))},
                      {"special", false},
                      {"start", start},
                      {"stop", stop}});
  }
  return tokens;
}

}  // namespace moekit::serve
