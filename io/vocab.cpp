#include "io/vocab.h"
#include "io/utf8.h"

#include <fstream>
#include <sstream>


#include "model/error.h"

namespace moekit::io {

namespace {

// Shared by load and from_tokens; errors say "line N" for files, "token i" for lists.
Vocab build(std::vector<std::string> tokens, const fs::path& path, bool by_line) {
  auto where = [&](size_t i) {
    return by_line ? "line " + std::to_string(i + 1) : "token " + std::to_string(i);
  };
  check(!tokens.empty(), path, "empty vocabulary");
  check(tokens.size() <= static_cast<size_t>(INT32_MAX), path, "vocabulary too large");
  Vocab v;
  v.path = path;
  v.ids.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& t = tokens[i];
    long bad = invalid_utf8_at(t);
    if (bad >= 0) fail(path, where(i) + ": invalid UTF-8 at byte " + std::to_string(bad));
    if (t.find_first_of("\r\n") != std::string::npos)
      fail(path, where(i) + ": token contains a line break");
    auto [it, inserted] = v.ids.emplace(t, static_cast<int32_t>(i));
    if (!inserted)
      fail(path, where(i) + ": duplicate token '" + t + "' (first at " +
                     where(static_cast<size_t>(it->second)) + ")");
  }
  v.tokens = std::move(tokens);
  return v;
}

}  // namespace

Vocab Vocab::load(const fs::path& vocab_txt) {
  std::ifstream in(vocab_txt, std::ios::binary);
  check(static_cast<bool>(in), vocab_txt, "cannot open vocabulary file");
  // Read whole, so bounded first: the largest real vocabularies (250k tokens) are a few MB.
  constexpr uintmax_t kMaxVocabBytes = 64 << 20;
  std::error_code ec;
  const uintmax_t bytes = fs::file_size(vocab_txt, ec);
  check(!ec && bytes <= kMaxVocabBytes, vocab_txt,
        "vocabulary file of " + std::to_string(bytes) + " bytes is larger than moekit allows (" +
            std::to_string(kMaxVocabBytes) + ")");
  std::stringstream buf;
  buf << in.rdbuf();
  check(!in.bad(), vocab_txt, "read error");
  const std::string data = buf.str();

  std::vector<std::string> tokens;
  size_t start = 0;
  while (start < data.size()) {  // a final '\n' ends the last line, it does not open a new one
    size_t end = data.find('\n', start);
    if (end == std::string::npos) end = data.size();
    std::string line = data.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    tokens.push_back(std::move(line));
    start = end + 1;
  }
  return build(std::move(tokens), vocab_txt, true);
}

Vocab Vocab::from_tokens(std::vector<std::string> tokens) {
  return build(std::move(tokens), fs::path(), false);
}

void Vocab::save(std::ostream& out) const {
  for (const std::string& t : tokens) out << t << '\n';
  check(static_cast<bool>(out), path, "write error while saving vocabulary");
}

void Vocab::save(const fs::path& vocab_txt) const {
  std::ofstream out(vocab_txt, std::ios::binary | std::ios::trunc);
  check(static_cast<bool>(out), vocab_txt, "cannot open for writing");
  for (const std::string& t : tokens) out << t << '\n';
  out.flush();
  check(static_cast<bool>(out), vocab_txt, "write error");
}

int32_t Vocab::id(const std::string& token) const {
  auto it = ids.find(token);
  return it == ids.end() ? -1 : it->second;
}

}  // namespace moekit::io
