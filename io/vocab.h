// Vocab: the WordPiece vocabulary (vocab.txt, one token per line; the line index is the id),
// as Hugging Face's load_vocab reads it, but with duplicates refused instead of shadowed.
#pragma once
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <unordered_map>
#include <vector>

namespace moekit::io {

namespace fs = std::filesystem;

struct Vocab {
  std::vector<std::string> tokens;                 // id -> token
  std::unordered_map<std::string, int32_t> ids;    // token -> id
  fs::path path;                                   // file it came from (for error messages); may be empty

  // Reads vocab.txt: lines split on '\n', one trailing '\r' removed, no other trimming (a token
  // may contain spaces). Throws Error naming the file and line for invalid UTF-8, duplicates,
  // or an empty file.
  static Vocab load(const fs::path& vocab_txt);
  // Throws Error for an empty list, a duplicate, or a token containing '\n' or '\r'.
  static Vocab from_tokens(std::vector<std::string> tokens);

  // Plain write, one token per line; atomicity is the caller's business.
  void save(const fs::path& vocab_txt) const;
  void save(std::ostream& out) const;

  int32_t id(const std::string& token) const;  // -1 if absent
  bool contains(const std::string& token) const { return ids.count(token) != 0; }
  size_t size() const { return tokens.size(); }
};

}  // namespace moekit::io
