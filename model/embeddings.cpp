#include "model/embeddings.h"

#include "model/dropout.h"
#include "model/error.h"

namespace moekit {

void Embeddings::init(const BertConfig& c) {
  const std::string p = c.prefix() + "embeddings.";
  const int64_t width = c.embedding_dim();  // ELECTRA's may be narrower than hidden_size
  word.init(p + "word_embeddings.weight", c.vocab_size, width, true);
  position.init(p + "position_embeddings.weight", c.max_position_embeddings, width, true);
  if (c.type_vocab_size > 0)
    token_type.init(p + "token_type_embeddings.weight", c.type_vocab_size, width, true);
  else
    token_type = Param{};  // DistilBERT
  norm.init(p + "LayerNorm", width, c.layer_norm_eps);
  dropout = c.hidden_dropout_prob;
  pad_token_id = c.pad_token_id;
  roberta_positions = c.roberta_like();
}

std::vector<int32_t> Embeddings::position_ids(const Batch& batch) const {
  std::vector<int32_t> pos(static_cast<size_t>(batch.n_tok()));
  for (int64_t b = 0; b < batch.batch; ++b) {
    int32_t seen = 0;
    for (int64_t t = 0; t < batch.seq; ++t) {
      const size_t i = static_cast<size_t>(b * batch.seq + t);
      if (!roberta_positions) {
        pos[i] = static_cast<int32_t>(t);
      } else {
        seen += batch.mask[i];
        pos[i] = static_cast<int32_t>(batch.mask[i] ? seen + pad_token_id : pad_token_id);
      }
    }
  }
  return pos;
}

void Embeddings::forward(const Batch& batch, Mat& out, Cache* cache, Rng* dropout_rng) const {
  const Eigen::Index n = batch.n_tok(), h = word.value.cols();
  const std::vector<int32_t> pos = position_ids(batch);
  for (Eigen::Index i = 0; i < n; ++i) {
    // Ids come from our tokenizer or a validated file; still, a wrong id must not read out of bounds.
    if (batch.ids[i] < 0 || batch.ids[i] >= word.value.rows())
      fail("", "token id " + std::to_string(batch.ids[i]) + " is outside the vocabulary of " +
                   std::to_string(word.value.rows()));
    if (has_token_types() && (batch.type_ids[i] < 0 || batch.type_ids[i] >= token_type.value.rows()))
      fail("", "token type id " + std::to_string(batch.type_ids[i]) + " is outside type_vocab_size " +
                   std::to_string(token_type.value.rows()));
    if (pos[i] >= position.value.rows())
      fail("", "sequence too long: position " + std::to_string(pos[i]) + " exceeds max_position_embeddings " +
                   std::to_string(position.value.rows()));
  }
  Mat sum(n, h);
  const bool types = has_token_types();
#pragma omp parallel for schedule(static)
  for (Eigen::Index i = 0; i < n; ++i) {
    sum.row(i) = word.value.row(batch.ids[i]) + position.value.row(pos[i]);
    if (types) sum.row(i) += token_type.value.row(batch.type_ids[i]);
  }
  norm.forward(sum, out, cache ? &cache->norm : nullptr);
  if (cache) {
    cache->position_ids = pos;
    cache->dropout_mask.resize(0, 0);
  }
  if (dropout_rng && dropout > 0) {
    Mat mask = dropout_mask(*dropout_rng, n, h, dropout);
    out.array() *= mask.array();
    if (cache) cache->dropout_mask = std::move(mask);
  }
}

void Embeddings::backward(const Batch& batch, MatRef dout, const Cache& cache) {
  Mat dsum;
  if (cache.dropout_mask.size() > 0) {
    Mat d = dout.cwiseProduct(cache.dropout_mask);
    norm.backward(d, cache.norm, dsum);
  } else {
    norm.backward(dout, cache.norm, dsum);
  }
  // Scatter-add into the tables; serial so repeated ids accumulate in a fixed order.
  Mat &dword = word.grad_buffer(), &dposition = position.grad_buffer();
  for (Eigen::Index i = 0; i < dsum.rows(); ++i) {
    dword.row(batch.ids[i]) += dsum.row(i);
    dposition.row(cache.position_ids[i]) += dsum.row(i);
  }
  if (!has_token_types()) return;
  Mat& dtype = token_type.grad_buffer();
  for (Eigen::Index i = 0; i < dsum.rows(); ++i) dtype.row(batch.type_ids[i]) += dsum.row(i);
}

void Embeddings::collect(ParamList& params) {
  params.push_back(&word);
  params.push_back(&position);
  if (has_token_types()) params.push_back(&token_type);
  norm.collect(params);
}

}  // namespace moekit
