// for_each_char: the code-point loop of the tokenizer passes that rebuild text with alignments
// (hf_normalizer.cpp, wordpiece.cpp). Its own header, not unicode_text.h, because it is a template
// over utf8proc and unicode_text.h (included everywhere through aligned_text.h) keeps utf8proc out.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include <utf8proc.h>

#include "model/error.h"

namespace moekit::io::text {

// Calls fn(begin, end, cp) for each code point of s, [begin, end) being its bytes. Invalid UTF-8
// (callers validate text first, but bert_normalize is public) throws "invalid UTF-8 in text at
// byte N" rather than reading past the end.
template <typename Fn>
void for_each_char(const std::string& s, Fn fn) {
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  for (size_t i = 0; i < s.size();) {
    utf8proc_int32_t cp = 0;
    // A negative utf8proc error code becomes a huge size_t, so one test catches both cases.
    const auto n = static_cast<size_t>(utf8proc_iterate(p + i, static_cast<utf8proc_ssize_t>(s.size() - i), &cp));
    if (n == 0 || n > s.size() - i)
      fail("", "invalid UTF-8 in text at byte " + std::to_string(i));
    fn(i, i + n, cp);
    i += n;
  }
}

}  // namespace moekit::io::text
