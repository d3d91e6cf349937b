// Unigram as models/unigram/model.rs (encode_optimized, SentencePiece's unigram_model.cc): the
// best-scoring segmentation by Viterbi over every vocabulary piece that starts at each character;
// a character no single piece covers is unknown (score min_score - 10), consecutive unknowns fuse.
#include <limits>

#include <nlohmann/json.hpp>

#include "io/tokenizer_models.h"
#include "io/unicode_text.h"
#include "model/error.h"

namespace moekit::io {

namespace {

constexpr double kUnkPenalty = 10.0;

// A byte trie: one hash entry per edge ((node << 8) | byte -> child), the piece id at each node.
class ByteTrie {
 public:
  void insert(const std::string& key, int32_t id) {
    uint32_t node = 0;
    for (unsigned char c : key) {
      auto [it, inserted] = edges_.emplace((uint64_t{node} << 8) | c, static_cast<uint32_t>(ids_.size()));
      if (inserted) ids_.push_back(-1);
      node = it->second;
    }
    ids_[node] = id;
  }
  // Calls fn(id, length) for each key that prefixes s[from..], shortest first.
  template <typename Fn>
  void prefixes(const std::string& s, size_t from, Fn fn) const {
    uint32_t node = 0;
    for (size_t i = from; i < s.size(); ++i) {
      auto it = edges_.find((uint64_t{node} << 8) | static_cast<unsigned char>(s[i]));
      if (it == edges_.end()) return;
      node = it->second;
      if (ids_[node] >= 0) fn(ids_[node], i + 1 - from);
    }
  }

 private:
  std::unordered_map<uint64_t, uint32_t> edges_;
  std::vector<int32_t> ids_{-1};  // node 0 = root
};

class UnigramModel : public TokenModel {
 public:
  UnigramModel(std::vector<std::pair<std::string, double>> pieces, int64_t unk_id, bool byte_fallback,
               const std::filesystem::path& file)
      : pieces_(std::move(pieces)), unk_id_(static_cast<int32_t>(unk_id)), byte_fallback_(byte_fallback) {
    if (unk_id >= static_cast<int64_t>(pieces_.size()))
      fail(file, "model Unigram: unk_id " + std::to_string(unk_id) + " is outside the vocabulary of " +
                     std::to_string(pieces_.size()));
    for (size_t i = 0; i < pieces_.size(); ++i) {
      const int32_t id = static_cast<int32_t>(i);
      ids_.insert_or_assign(pieces_[i].first, id);
      trie_.insert(pieces_[i].first, id);
      min_score_ = std::min(min_score_, pieces_[i].second);
    }
  }

  void tokenize(const std::string& s, std::vector<Token>& out) const override {
    struct Node {
      int32_t id = 0;
      double score = 0;
      size_t start = std::string::npos;  // npos: not reached yet
    };
    const double unk_score = min_score_ - kUnkPenalty;
    std::vector<Node> best(s.size() + 1);
    for (size_t at = 0; at < s.size();) {
      const double here = best[at].score;
      const size_t char_len = static_cast<size_t>(text::utf8_length(static_cast<unsigned char>(s[at])));
      bool single = false;
      trie_.prefixes(s, at, [&](int32_t id, size_t len) {
        Node& target = best[at + len];
        const double cand = here + pieces_[static_cast<size_t>(id)].second;
        if (target.start == std::string::npos || cand > target.score) target = {id, cand, at};
        if (len == char_len) single = true;
      });
      if (!single) {
        if (unk_id_ < 0) fail("", "Unigram: the text has a character the vocabulary cannot express and there is no unk_id");
        Node& target = best[at + char_len];
        const double cand = here + unk_score;
        if (target.start == std::string::npos || cand > target.score) target = {unk_id_, cand, at};
      }
      at += char_len;
    }
    std::vector<std::string> parts;  // back to front
    std::string unknown;             // fused unknown run, back to front
    for (size_t end = s.size(); end > 0;) {
      const Node& node = best[end];
      std::string part = s.substr(node.start, end - node.start);
      if (node.id == unk_id_) {
        unknown = part + unknown;
      } else {
        if (!unknown.empty()) parts.push_back(std::move(unknown)), unknown.clear();
        parts.push_back(std::move(part));
      }
      end = node.start;
    }
    if (!unknown.empty()) parts.push_back(std::move(unknown));
    size_t at = 0;
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
      emit(*it, at, out);
      at += it->size();
    }
  }

  int32_t token_to_id(const std::string& t) const override {
    auto it = ids_.find(t);
    return it == ids_.end() ? -1 : it->second;
  }
  int64_t id_limit() const override { return static_cast<int64_t>(pieces_.size()); }
  std::string kind() const override { return "unigram"; }

 private:
  // Byte-fallback tokens each get the whole part's range, as model.rs gives them.
  void emit(const std::string& part, size_t at, std::vector<Token>& out) const {
    const size_t end = at + part.size();
    const int32_t id = token_to_id(part);
    if (id >= 0) {
      out.push_back({id, part, at, end});
      return;
    }
    if (byte_fallback_) {
      std::vector<Token> bytes;
      for (unsigned char b : part) {
        char code[8];
        std::snprintf(code, sizeof code, "<0x%02X>", b);
        const int32_t bid = token_to_id(code);
        if (bid < 0) break;
        bytes.push_back({bid, code, at, end});
      }
      if (bytes.size() == part.size()) {
        out.insert(out.end(), bytes.begin(), bytes.end());
        return;
      }
    }
    if (unk_id_ < 0) fail("", "Unigram: no unk_id for an unknown piece");
    out.push_back({unk_id_, part, at, end});
  }

  std::vector<std::pair<std::string, double>> pieces_;
  std::unordered_map<std::string, int32_t> ids_;
  ByteTrie trie_;
  double min_score_ = std::numeric_limits<double>::infinity();
  int32_t unk_id_;
  bool byte_fallback_;
};

}  // namespace

std::unique_ptr<TokenModel> parse_unigram(const nlohmann::json& j, const std::filesystem::path& file) {
  const hf_json::Fields f{j, file, "model Unigram"};
  const auto& vocab = f.array("vocab");
  if (vocab.empty()) f.fail_with("empty vocab");
  if (vocab.size() > kMaxTokenizerVocab)
    f.fail_with("vocab of " + std::to_string(vocab.size()) + " entries is larger than moekit allows (" +
                std::to_string(kMaxTokenizerVocab) + ")");
  std::vector<std::pair<std::string, double>> pieces;
  pieces.reserve(vocab.size());
  for (size_t i = 0; i < vocab.size(); ++i) {
    const auto& e = vocab[i];
    if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_number())
      f.fail_with("vocab entry " + std::to_string(i) + ": expected [piece, score]");
    pieces.emplace_back(e[0].get<std::string>(), e[1].get<double>());
    if (pieces.back().first.empty()) f.fail_with("vocab entry " + std::to_string(i) + ": empty piece");
  }
  const int64_t unk_id = f.integer_or("unk_id", -1);
  if (f.has("unk_id") && unk_id < 0) f.fail_with("unk_id must not be negative");
  return std::make_unique<UnigramModel>(std::move(pieces), unk_id, f.boolean_or("byte_fallback", false), file);
}

}  // namespace moekit::io
