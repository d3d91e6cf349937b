// BPE as models/bpe/model.rs + word.rs: characters (with continuing_subword_prefix /
// end_of_word_suffix) looked up, unknowns fused or byte-fallen-back, then merges applied lowest
// rank first (leftmost on ties) until none applies.
#include <queue>

#include <nlohmann/json.hpp>

#include "io/tokenizer_models.h"
#include "io/unicode_text.h"
#include "model/error.h"

namespace moekit::io {

namespace {

struct PairHash {
  size_t operator()(const std::pair<int32_t, int32_t>& p) const {
    return std::hash<uint64_t>()((uint64_t(uint32_t(p.first)) << 32) | uint32_t(p.second));
  }
};

struct BpeConfig {
  std::string unk, prefix, suffix;
  bool has_unk = false, fuse_unk = false, byte_fallback = false, ignore_merges = false;
};

class BpeModel : public TokenModel {
 public:
  BpeModel(Vocabulary vocab, const std::vector<std::pair<std::string, std::string>>& merges, BpeConfig config,
           const std::filesystem::path& file)
      : vocab_(std::move(vocab)), c_(std::move(config)) {
    if (merges.size() > kMaxTokenizerMerges)
      fail(file, "model BPE: " + std::to_string(merges.size()) + " merges, more than moekit allows (" +
                     std::to_string(kMaxTokenizerMerges) + ")");
    text_.resize(static_cast<size_t>(vocab_.limit));
    for (const auto& [t, id] : vocab_.ids) text_[static_cast<size_t>(id)] = t;
    if (c_.has_unk) {
      unk_id_ = vocab_.id(c_.unk);
      if (unk_id_ < 0) fail(file, "model BPE: unk_token \"" + c_.unk + "\" is not in the vocabulary");
    }
    merges_.reserve(merges.size());
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const auto& [a, b] = merges[rank];
      const int32_t ia = vocab_.id(a), ib = vocab_.id(b);
      if (b.size() < c_.prefix.size())
        fail(file, "model BPE: merge " + std::to_string(rank + 1) + ": \"" + b + "\" is shorter than the continuing_subword_prefix");
      const std::string merged = a + b.substr(c_.prefix.size());  // the Rust library cuts the prefix unchecked
      const int32_t im = vocab_.id(merged);
      if (ia < 0 || ib < 0 || im < 0)
        fail(file, "model BPE: merge " + std::to_string(rank + 1) + " (\"" + a + "\" \"" + b + "\"): \"" +
                       (ia < 0 ? a : ib < 0 ? b : merged) + "\" is not in the vocabulary");
      merges_.insert_or_assign(std::make_pair(ia, ib), std::make_pair(static_cast<int32_t>(rank), im));  // last wins, as a Rust collect
    }
  }

  void tokenize(const std::string& word, std::vector<Token>& out) const override {
    if (c_.ignore_merges) {
      if (int32_t id = vocab_.id(word); id >= 0) {
        out.push_back({id, word, 0, word.size()});
        return;
      }
    }
    // Symbols with their byte lengths; ranges run on in the order symbols are added, as
    // bpe/word.rs Word::add makes them (so a byte-fallback byte counts 1 and the unknown token
    // waiting behind byte-fallback tokens comes after them).
    std::vector<int32_t> symbols;
    std::vector<size_t> lengths;
    int32_t pending_unk = -1;  // an unknown run waiting to be added (fuse_unk)
    size_t pending_len = 0;
    auto add = [&](int32_t id, size_t len) { symbols.push_back(id), lengths.push_back(len); };
    for (size_t i = 0; i < word.size();) {
      const size_t len = static_cast<size_t>(text::utf8_length(static_cast<unsigned char>(word[i])));
      std::string s = word.substr(i, len);
      const bool first = i == 0;
      i += len;
      if (!first) s = c_.prefix + s;
      if (i >= word.size()) s += c_.suffix;
      if (int32_t id = vocab_.id(s); id >= 0) {
        if (pending_unk >= 0) add(pending_unk, pending_len), pending_unk = -1;
        add(id, len);
        continue;
      }
      if (c_.byte_fallback) {
        std::vector<int32_t> bytes;
        for (unsigned char b : s) {
          char code[8];
          std::snprintf(code, sizeof code, "<0x%02X>", b);
          const int32_t id = vocab_.id(code);
          if (id < 0) break;
          bytes.push_back(id);
        }
        if (bytes.size() == s.size()) {  // as the Rust library: a pending unknown waits behind these
          for (int32_t id : bytes) add(id, 1);
          continue;
        }
      }
      if (c_.has_unk) {
        if (pending_unk >= 0 && c_.fuse_unk) {
          pending_len += len;
          continue;
        }
        if (pending_unk >= 0) add(pending_unk, pending_len);
        pending_unk = unk_id_;
        pending_len = len;
      }
    }
    if (pending_unk >= 0) add(pending_unk, pending_len);
    std::vector<std::pair<size_t, size_t>> spans(symbols.size());
    for (size_t k = 0, at = 0; k < symbols.size(); at += lengths[k], ++k) spans[k] = {at, at + lengths[k]};
    merge_all(symbols, spans);
    for (size_t k = 0; k < symbols.size(); ++k)
      out.push_back({symbols[k], text_[static_cast<size_t>(symbols[k])], spans[k].first, spans[k].second});
  }

  int32_t token_to_id(const std::string& t) const override { return vocab_.id(t); }
  int64_t id_limit() const override { return vocab_.id_limit(); }
  std::string kind() const override { return "bpe"; }

 private:
  // word.rs merge_all without dropout: a heap of (rank, position); stale entries skipped.
  // Merges ids (and their byte ranges: a merge covers both) by rank, leftmost first.
  void merge_all(std::vector<int32_t>& ids, std::vector<std::pair<size_t, size_t>>& spans) const {
    const int n = static_cast<int>(ids.size());
    std::vector<int> prev(static_cast<size_t>(n)), next(static_cast<size_t>(n));
    std::vector<bool> alive(static_cast<size_t>(n), true);
    for (int i = 0; i < n; ++i) prev[static_cast<size_t>(i)] = i - 1, next[static_cast<size_t>(i)] = i + 1;
    struct Merge {
      int32_t rank;
      int pos;
      int32_t new_id;
      bool operator<(const Merge& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Merge> queue;
    auto push = [&](int pos) {
      const int nx = next[static_cast<size_t>(pos)];
      if (nx >= n) return;
      auto it = merges_.find({ids[static_cast<size_t>(pos)], ids[static_cast<size_t>(nx)]});
      if (it != merges_.end()) queue.push({it->second.first, pos, it->second.second});
    };
    for (int i = 0; i + 1 < n; ++i) push(i);
    while (!queue.empty()) {
      const Merge top = queue.top();
      queue.pop();
      const size_t p = static_cast<size_t>(top.pos);
      if (!alive[p] || next[p] >= n) continue;
      const size_t nx = static_cast<size_t>(next[p]);
      auto it = merges_.find({ids[p], ids[nx]});
      if (it == merges_.end() || it->second.second != top.new_id) continue;
      ids[p] = top.new_id;
      spans[p].second = spans[nx].second;
      alive[nx] = false;
      next[p] = next[nx];
      if (next[p] < n) prev[static_cast<size_t>(next[p])] = top.pos;
      if (prev[p] >= 0) push(prev[p]);
      push(top.pos);
    }
    std::vector<int32_t> merged;
    std::vector<std::pair<size_t, size_t>> merged_spans;
    for (int i = 0; i < n; ++i)
      if (alive[static_cast<size_t>(i)]) merged.push_back(ids[static_cast<size_t>(i)]), merged_spans.push_back(spans[static_cast<size_t>(i)]);
    ids = std::move(merged);
    spans = std::move(merged_spans);
  }

  Vocabulary vocab_;
  BpeConfig c_;
  std::vector<std::string> text_;
  int32_t unk_id_ = -1;
  std::unordered_map<std::pair<int32_t, int32_t>, std::pair<int32_t, int32_t>, PairHash> merges_;
};

}  // namespace

std::unique_ptr<TokenModel> parse_bpe(const nlohmann::json& j, const std::filesystem::path& file) {
  const hf_json::Fields f{j, file, "model BPE"};
  if (f.has("dropout")) {
    const auto& d = j.at("dropout");
    if (!d.is_number() || d.get<double>() != 0.0)
      f.fail_with("dropout is random at every call; moekit needs a deterministic tokenizer (set it to null)");
  }
  BpeConfig c;
  c.has_unk = f.has("unk_token");
  c.unk = f.string_or("unk_token", "");
  c.prefix = f.string_or("continuing_subword_prefix", "");
  c.suffix = f.string_or("end_of_word_suffix", "");
  c.fuse_unk = f.boolean_or("fuse_unk", false);
  c.byte_fallback = f.boolean_or("byte_fallback", false);
  c.ignore_merges = f.boolean_or("ignore_merges", false);
  Vocabulary vocab = parse_vocab_object(f);
  const auto& merges_json = f.array("merges");
  if (merges_json.size() > kMaxTokenizerMerges) f.fail_with("too many merges (" + std::to_string(merges_json.size()) + ")");
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(merges_json.size());
  for (size_t i = 0; i < merges_json.size(); ++i) {
    const auto& m = merges_json[i];
    if (m.is_string()) {  // "a b" (older files)
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        f.fail_with("merge " + std::to_string(i + 1) + ": expected \"a b\", got \"" + s + "\"");
      merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      f.fail_with("merge " + std::to_string(i + 1) + ": expected \"a b\" or [\"a\", \"b\"]");
    }
  }
  return std::make_unique<BpeModel>(std::move(vocab), merges, std::move(c), file);
}

std::unique_ptr<TokenModel> make_bpe(std::unordered_map<std::string, int32_t> vocab,
                                     const std::vector<std::pair<std::string, std::string>>& merges,
                                     const std::filesystem::path& file) {
  return std::make_unique<BpeModel>(make_vocabulary(std::move(vocab), file, "vocab.json"), merges, BpeConfig{}, file);
}

}  // namespace moekit::io
