#include "distill/qa_metrics.h"

#include <algorithm>
#include <cctype>
#include <limits>
#include <sstream>
#include <unordered_map>

#include "io/unicode_text.h"
#include "model/error.h"

namespace moekit::distill {

QaDecodeOptions qa_decode_options(const BertConfig& c) {
  QaDecodeOptions o;
  o.null_answers = c.qa_null_answers;
  o.null_threshold = c.qa_null_threshold;
  return o;
}

QaAnswer best_answer(const std::vector<const io::EncodedExample*>& features, const std::vector<MatRef>& logits,
                     const QaDecodeOptions& o) {
  if (features.empty() || features.size() != logits.size()) fail("", "QA decoding: features and logits differ");
  const io::QaContext& ctx = *features.front()->qa;
  double best = -std::numeric_limits<double>::infinity(), null_score = std::numeric_limits<double>::infinity();
  int64_t best_first = -1, best_last = -1;  // context words
  for (size_t f = 0; f < features.size(); ++f) {
    const io::EncodedExample& x = *features[f];
    MatRef z = logits[f];
    if (z.rows() != static_cast<Eigen::Index>(x.ids.size()) || z.cols() != 2)
      fail("", "QA decoding: logits " + shape_str(z.rows(), z.cols()) + " for a feature of " +
                   std::to_string(x.ids.size()) + " tokens");
    null_score = std::min(null_score, static_cast<double>(z(0, 0)) + z(0, 1));
    const auto n = static_cast<int64_t>(x.ids.size());
    for (int64_t i = 0; i < n; ++i) {
      if (x.token_word[static_cast<size_t>(i)] < 0) continue;
      for (int64_t j = i; j < std::min<int64_t>(n, i + o.max_answer_tokens); ++j) {
        if (x.token_word[static_cast<size_t>(j)] < 0) break;  // the context ends
        const double s = static_cast<double>(z(i, 0)) + z(j, 1);
        if (s > best) {
          best = s;
          best_first = x.token_word[static_cast<size_t>(i)];
          best_last = x.token_word[static_cast<size_t>(j)];
        }
      }
    }
  }
  QaAnswer a;
  a.question = features.front()->qa;
  if (best_first < 0 || (o.null_answers && null_score - best > o.null_threshold)) {
    a.score = null_score;
    return a;
  }
  a.score = best;
  a.begin = ctx.words[static_cast<size_t>(best_first)].begin;
  a.end = ctx.words[static_cast<size_t>(best_last)].end;
  a.text = ctx.context.substr(a.begin, a.end - a.begin);
  return a;
}

std::string normalize_answer(const std::string& s) {
  // SQuAD's script: str.lower() (full Unicode case mapping), drop string.punctuation (ASCII only),
  // drop the articles, then str.split() (on Unicode whitespace) and join with single spaces.
  std::string kept;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80 && std::ispunct(u)) continue;
    kept.push_back(c);
  }
  const io::text::CodePoints cps = io::text::decode(io::text::lowercase(kept));
  std::string out, word;
  auto finish_word = [&] {
    if (!word.empty() && word != "a" && word != "an" && word != "the") out += (out.empty() ? "" : " ") + word;
    word.clear();
  };
  for (const int32_t cp : cps) {
    if (io::text::is_whitespace(cp))
      finish_word();
    else
      io::text::append_utf8(word, cp);
  }
  finish_word();
  return out;
}

namespace {

std::vector<std::string> tokens_of(const std::string& s) {
  std::istringstream in(normalize_answer(s));
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

double f1_one(const std::string& prediction, const std::string& gold) {
  const auto p = tokens_of(prediction), g = tokens_of(gold);
  if (p.empty() || g.empty()) return p.empty() && g.empty() ? 1.0 : 0.0;
  std::unordered_map<std::string, int> count;
  for (const auto& w : g) ++count[w];
  int common = 0;
  for (const auto& w : p)
    if (count[w]-- > 0) ++common;
  if (common == 0) return 0;
  const double precision = static_cast<double>(common) / static_cast<double>(p.size());
  const double recall = static_cast<double>(common) / static_cast<double>(g.size());
  return 2 * precision * recall / (precision + recall);
}

template <class Score>
double best_over(const std::string& prediction, const std::vector<std::string>& gold, Score score) {
  if (gold.empty()) return score(prediction, std::string());
  double best = 0;
  for (const auto& g : gold) best = std::max(best, score(prediction, g));
  return best;
}

}  // namespace

double exact_match(const std::string& prediction, const std::vector<std::string>& gold) {
  return best_over(prediction, gold,
                   [](const std::string& p, const std::string& g) { return normalize_answer(p) == normalize_answer(g) ? 1.0 : 0.0; });
}

double answer_f1(const std::string& prediction, const std::vector<std::string>& gold) {
  return best_over(prediction, gold, f1_one);
}

std::vector<QaAnswer> best_answers(MatRef token_logits, const std::vector<io::EncodedExample>& features,
                                   const QaDecodeOptions& options) {
  std::vector<QaAnswer> out;
  Eigen::Index row = 0;
  for (size_t i = 0; i < features.size();) {
    std::vector<const io::EncodedExample*> fs;
    std::vector<MatRef> zs;
    for (size_t j = i; j < features.size() && features[j].qa_example == features[i].qa_example; ++j) {
      const auto n = static_cast<Eigen::Index>(features[j].ids.size());
      if (!features[j].qa || row + n > token_logits.rows()) fail("", "QA decoding: features and logits differ");
      fs.push_back(&features[j]);
      zs.emplace_back(token_logits.middleRows(row, n));
      row += n;
    }
    out.push_back(best_answer(fs, zs, options));
    i += fs.size();
  }
  return out;
}

std::map<std::string, double> qa_metrics(MatRef token_logits, const std::vector<io::EncodedExample>& features,
                                         const QaDecodeOptions& options) {
  double em = 0, f1 = 0;
  const std::vector<QaAnswer> answers = best_answers(token_logits, features, options);
  for (const QaAnswer& a : answers) {
    em += exact_match(a.text, a.question->gold);
    f1 += answer_f1(a.text, a.question->gold);
  }
  const double n = static_cast<double>(std::max<size_t>(answers.size(), 1));
  return {{"exact_match", em / n}, {"f1", f1 / n}};
}

}  // namespace moekit::distill
