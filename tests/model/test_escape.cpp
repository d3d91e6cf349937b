#include <catch2/catch.hpp>

#include "model/error.h"

using moekit::escape_for_terminal;

TEST_CASE("escape_for_terminal keeps printable UTF-8 and escapes the rest", "[error][escape]") {
  CHECK(escape_for_terminal("plain text: 'a.b' [1, 2]") == "plain text: 'a.b' [1, 2]");
  CHECK(escape_for_terminal("Grüße, 日本, 🙂") == "Grüße, 日本, 🙂");
  // The case: a flipped byte in a safetensors header, quoted by the JSON parser.
  CHECK(escape_for_terminal("last read: '\"b\x82'") == "last read: '\"b\\x82'");
  // Terminal control: ESC sequences, newline (keeps the message on one line), BEL, DEL.
  CHECK(escape_for_terminal("a\x1b[2Jb") == "a\\x1b[2Jb");
  CHECK(escape_for_terminal("one\ntwo\r\t\x07\x7f") == "one\\x0atwo\\x0d\\x09\\x07\\x7f");
  CHECK(escape_for_terminal(std::string("nul\0byte", 8)) == "nul\\x00byte");
  // C1 controls encoded as valid UTF-8 (U+009B is CSI) and bidi overrides (U+202E).
  CHECK(escape_for_terminal("x\xc2\x9by") == "x\\xc2\\x9by");
  CHECK(escape_for_terminal("x\xe2\x80\xaey") == "x\\xe2\\x80\\xaey");
}

TEST_CASE("escape_for_terminal refuses malformed UTF-8 byte by byte", "[error][escape]") {
  CHECK(escape_for_terminal("\xc0\xaf") == "\\xc0\\xaf");                  // overlong '/'
  CHECK(escape_for_terminal("\xed\xa0\x80") == "\\xed\\xa0\\x80");         // surrogate U+D800
  CHECK(escape_for_terminal("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");  // past U+10FFFF
  CHECK(escape_for_terminal("\xe6\x97") == "\\xe6\\x97");                  // truncated sequence
  CHECK(escape_for_terminal("\xe6\x97z") == "\\xe6\\x97z");                // resynchronises after it
  CHECK(escape_for_terminal("\xff\xfe") == "\\xff\\xfe");
  // Whatever the input, the output is printable ASCII or valid UTF-8 with no control bytes.
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (unsigned char c : escape_for_terminal(all)) CHECK((c >= 0x20 && c != 0x7f));
}
