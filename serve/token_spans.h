// The /tokenize answer for one input, as TEI's into_tokens (core/src/tokenization.rs) builds it:
// [{"id", "text", "special", "start", "stop"}, ...]. start/stop are byte offsets into the input
// (the Rust tokenizers' encode offsets) and text is input[start, stop) for a text token; a special
// token (one the post-processor added; not an added token found in the text) has its token text
// and null start/stop.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "io/tokenizer.h"

namespace moekit::serve {

nlohmann::json token_spans(const io::Encoding& enc, const std::string& input);

// s as valid UTF-8: each invalid byte becomes U+FFFD (Rust's String::from_utf8_lossy, near enough
// for the slices of valid text that offsets cut).
std::string utf8_lossy(const std::string& s);

}  // namespace moekit::serve
