// UTF-8 validation shared by the readers of text files (vocab.txt, datasets).
#pragma once
#include <string>

namespace moekit::io {

// Byte offset of the first invalid UTF-8 sequence in s, or -1 when s is valid.
long invalid_utf8_at(const std::string& s);

}  // namespace moekit::io
