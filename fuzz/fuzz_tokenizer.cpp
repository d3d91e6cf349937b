// libFuzzer target: tokenizer.json (io::HfTokenizer::from_json_file). A file that loads then
// encodes a few fixed texts and the input's own bytes as text (single and as a truncated pair),
// exercising the normalizers, pre-tokenizers, models and post-processors it declares.
#include <algorithm>

#include "fuzz/fuzz_util.h"
#include "io/hf_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = moekit::fuzz::input_file(data, size, "tokenizer.json");
  moekit::fuzz::expect_error_or_success([&] {
    const auto tok = moekit::io::HfTokenizer::from_json_file(path);
    const std::string own(reinterpret_cast<const char*>(data), std::min<size_t>(size, 1024));
    for (const std::string& text : {std::string("Hello, world! caf\xC3\xA9 \xE4\xB8\xAD  x"), std::string(), own}) {
      moekit::fuzz::expect_error_or_success([&] {
        tok->encode(text, nullptr, 512);
        tok->encode(text, &text, 16);
      });
    }
  });
  return 0;
}
