#include "model/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <omp.h>

#include "model/attention_kernel.h"
#include "model/dropout.h"
#include "model/matmul.h"
#include "model/onednn_common.h"
#include "model/vector_math.h"

namespace moekit {

namespace {

// x [batch*seq, heads*hd] -> out [(b*heads + h)*seq + i, hd] (rows of one sequence and head together).
void to_head_major(MatRef x, Eigen::Index seq, Eigen::Index heads, Mat& out) {
  const Eigen::Index hd = x.cols() / heads, n_blocks = x.rows() / seq * heads;
#pragma omp parallel for schedule(static)
  for (Eigen::Index blk = 0; blk < n_blocks; ++blk) {
    const Eigen::Index b = blk / heads, h = blk % heads;
    out.middleRows(blk * seq, seq) = x.block(b * seq, h * hd, seq, hd);
  }
}

void from_head_major(const Mat& xh, Eigen::Index seq, Eigen::Index heads, Mat& out) {
  const Eigen::Index hd = out.cols() / heads, n_blocks = out.rows() / seq * heads;
#pragma omp parallel for schedule(static)
  for (Eigen::Index blk = 0; blk < n_blocks; ++blk) {
    const Eigen::Index b = blk / heads, h = blk % heads;
    out.block(b * seq, h * hd, seq, hd) = xh.middleRows(blk * seq, seq);
  }
}

// softmax(scores * scale) over the real keys of one (sequence, head) block [seq, seq] of raw
// scores Q K^T, in place; m is the sequence's key mask.
void masked_softmax_block(float* p, Eigen::Index seq, const uint8_t* m, float scale) {
  const Eigen::Index real = right_padded_real(m, seq);  // keys [0, real) are real
  if (real > 0) {
    // The same softmax, vectorised (model/vector_math.h) over the real keys; padded keys get
    // exactly 0. Row by row: each row segment is contiguous.
    for (Eigen::Index i = 0; i < seq; ++i) {
      softmax_scaled(p + i * seq, real, scale);
      std::fill(p + i * seq + real, p + (i + 1) * seq, 0.0f);
    }
    return;
  }
  bool any_key = false;
  for (Eigen::Index j = 0; j < seq; ++j) any_key |= m[j] != 0;
  for (Eigen::Index i = 0; i < seq; ++i) {
    // HF adds finfo(float32).min to masked scores: their exp is exactly 0 unless no key is real,
    // in which case every score is equally tiny and softmax is uniform.
    float* row = p + i * seq;
    float mx = -std::numeric_limits<float>::infinity();
    for (Eigen::Index j = 0; j < seq; ++j)
      if (m[j] || !any_key) mx = std::max(mx, row[j]);
    float sum = 0;
    for (Eigen::Index j = 0; j < seq; ++j) {
      const float e = (m[j] || !any_key) ? std::exp((row[j] - mx) * scale) : 0.0f;
      row[j] = e;
      sum += e;
    }
    for (Eigen::Index j = 0; j < seq; ++j) row[j] /= sum;
  }
}

// Raw scores Q K^T -> softmax(scores * scale) over the real keys, in place, per (sequence, head)
// block [(b*heads + h)*seq + i, j].
void masked_softmax(Mat& probs, const Batch& batch, Eigen::Index heads, float scale) {
  const Eigen::Index seq = batch.seq, n_blocks = batch.batch * heads;
#pragma omp parallel for schedule(static)
  for (Eigen::Index blk = 0; blk < n_blocks; ++blk)
    masked_softmax_block(probs.data() + blk * seq * seq, seq, &batch.mask[static_cast<size_t>(blk / heads * seq)],
                         scale);
}

// Runs f(b, h0, h1) for every (sequence b, heads [h0, h1)) unit of attention inference, the units
// spread over the threads and each run whole by one thread, so that its scores stay in that
// core's cache: at batch 32 x seq 128 the whole batch's scores are 8 MB a layer, written, read
// and read again when each step ran over the whole batch. A batch too small to give every
// thread two sequences splits its sequences' heads into groups.
template <typename F>
void for_each_attention_unit(Eigen::Index batch_size, Eigen::Index heads, F f) {
  // Already on one thread of a parallel region (a thread's share of the batch): one thread here.
  const Eigen::Index threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const Eigen::Index groups = std::min<Eigen::Index>(heads, (2 * threads + batch_size - 1) / batch_size);
  const Eigen::Index per_group = (heads + groups - 1) / groups, units = batch_size * groups;
#pragma omp parallel for schedule(static)
  for (Eigen::Index u = 0; u < units; ++u) {
    const Eigen::Index b = u / groups, h0 = u % groups * per_group, h1 = std::min(heads, h0 + per_group);
    if (h0 < h1) f(b, h0, h1);
  }
}

// fp32 attention of heads [h0, h1) of one sequence, read in place: q, k and v point at the
// sequence's first row of each (row stride ld), ctx at its first context row (row stride
// hidden). round_probs rounds the probabilities to bf16 (bf16 on fp32 kernels).
void sequence_attention_fp32(const float* q, const float* k, const float* v, Eigen::Index ld, const uint8_t* mask,
                             Eigen::Index seq, Eigen::Index hidden, Eigen::Index hd, Eigen::Index h0, Eigen::Index h1,
                             float scale, bool round_probs, float* ctx) {
  const Eigen::Index g = h1 - h0;
  const int64_t S = seq, Hd = hd, H = hidden, L = ld;
  const int64_t at = h0 * hd;
  const int64_t real = right_padded_real(mask, seq);
  if (real > 0 && real <= kFusedAttentionMaxKeys && fused_attention_available()) {
    for (int64_t h = at; h < h1 * hd; h += hd)
      fused_attention_head(q + h, k + h, v + h, L, S, real, Hd, scale, round_probs, ctx + h, H);
    return;
  }
  thread_local std::vector<float> scores;
  scores.resize(static_cast<size_t>(g * seq * seq));
  strided_batched_matmul({const_cast<float*>(q + at), S * L, Hd, L, 1}, {const_cast<float*>(k + at), S * L, Hd, 1, L},
                         {scores.data(), g * S * S, S * S, S, 1}, 1, g, S, Hd, S);
  for (Eigen::Index h = 0; h < g; ++h) masked_softmax_block(scores.data() + h * seq * seq, seq, mask, scale);
  if (round_probs) round_to_bf16(scores.data(), scores.size());
  strided_batched_matmul({scores.data(), g * S * S, S * S, S, 1}, {const_cast<float*>(v + at), S * L, Hd, L, 1},
                         {ctx + at, S * H, Hd, H, 1}, 1, g, S, S, Hd);
}

// bf16 attention of heads [h0, h1) of one sequence: qkv holds its rows of the fused bf16
// projections (row stride 3*hidden), ctx its rows of the context (row stride hidden).
void sequence_attention_bf16(const uint16_t* qkv, const uint8_t* mask, Eigen::Index seq, Eigen::Index hidden,
                             Eigen::Index hd, Eigen::Index h0, Eigen::Index h1, float scale, uint16_t* ctx) {
  const Eigen::Index g = h1 - h0, part = g * seq * hd;
  thread_local std::vector<uint16_t> heads3, probs16;
  thread_local std::vector<float> scores;
  heads3.resize(static_cast<size_t>(3 * part));
  scores.resize(static_cast<size_t>(g * seq * seq));
  probs16.resize(scores.size());
  // Head-major copies: AMX kernels on contiguous (head, row) blocks beat strided reads (Intel
  // Xeon with AMX, 2026-12-02: Q K^T 641 vs 278 GFLOP/s, P V 1115 vs 453).
  for (int which = 0; which < 3; ++which)
    for (Eigen::Index h = 0; h < g; ++h)
      for (Eigen::Index i = 0; i < seq; ++i)
        std::memcpy(heads3.data() + which * part + (h * seq + i) * hd, qkv + i * 3 * hidden + which * hidden + (h0 + h) * hd,
                    sizeof(uint16_t) * static_cast<size_t>(hd));
  uint16_t* q = heads3.data();
  uint16_t* k = q + part;
  uint16_t* v = k + part;
  const int64_t S = seq, Hd = hd, H = hidden;
  strided_batched_matmul({q, g * S * Hd, S * Hd, Hd, 1, true}, {k, g * S * Hd, S * Hd, 1, Hd, true},
                         {scores.data(), g * S * S, S * S, S, 1}, 1, g, S, Hd, S);
  for (Eigen::Index h = 0; h < g; ++h) masked_softmax_block(scores.data() + h * seq * seq, seq, mask, scale);
  onednn::convert_bf16(scores.data(), 1, static_cast<Eigen::Index>(scores.size()),
                       static_cast<Eigen::Index>(scores.size()), probs16.data());
  strided_batched_matmul({probs16.data(), g * S * S, S * S, S, 1, true}, {v, g * S * Hd, S * Hd, Hd, 1, true},
                         {ctx + h0 * Hd, S * H, Hd, H, 1, true}, 1, g, S, S, Hd);
}

}  // namespace

void Attention::init(const std::string& p, const BertConfig& c, bool with_projections) {
  const LayerNames& n = c.layer_names();
  if (with_projections) {
    query.init(p + n.query, c.hidden_size, c.hidden_size);
    key.init(p + n.key, c.hidden_size, c.hidden_size);
    value.init(p + n.value, c.hidden_size, c.hidden_size);
    out.init(p + n.attention_out, c.hidden_size, c.hidden_size);
  } else {
    query = key = value = out = Linear{};
  }
  norm.init(p + n.attention_norm, c.hidden_size, c.layer_norm_eps);
  heads = c.num_attention_heads;
  attention_dropout = c.attention_probs_dropout_prob;
  // DistilBERT's MultiHeadSelfAttention has no dropout on out_lin's output.
  hidden_dropout = c.distilbert() ? 0.0f : c.hidden_dropout_prob;
}

// Inference on bf16 kernels: Q, K and V come out of their fused product as bf16, and the context
// goes to the output projection as bf16: each tensor is rounded where the bf16 products would
// round it anyway. Between the two, each thread runs whole (sequence, head-group) units.
void Attention::bf16_inference(MatRef x, const Batch& batch, Mat& o) const {
  const Attention& w = shared ? *shared : *this;
  const Eigen::Index n = x.rows(), hidden = x.cols(), seq = batch.seq, hd = hidden / heads;
  thread_local Bf16Matrix qkv, ctx;
  w.qkv_packed->multiply(x, qkv);
  ctx.resize(n, hidden);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const uint16_t* qkv_data = qkv.data();
  uint16_t* ctx_data = ctx.data();
  for_each_attention_unit(batch.batch, heads, [&](Eigen::Index b, Eigen::Index h0, Eigen::Index h1) {
    sequence_attention_bf16(qkv_data + b * seq * 3 * hidden, &batch.mask[static_cast<size_t>(b * seq)], seq, hidden,
                            hd, h0, h1, scale, ctx_data + b * seq * hidden);
  });
  w.out.packed->multiply(ctx, o);
}

bool Attention::runs_bf16_inference() const {
  const Attention& w = shared ? *shared : *this;
  return w.qkv_packed && w.qkv_packed->bf16_activations() && w.out.packed && w.out.packed->bf16_activations();
}

void Attention::forward(MatRef x, const Batch& batch, Mat& y, Cache* cache, Rng* dropout_rng) const {
  const Eigen::Index n = x.rows(), hidden = x.cols(), seq = batch.seq;
  const Eigen::Index hd = hidden / heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const Attention& w = shared ? *shared : *this;  // the projections
  const Precision prec = w.query.precision;      // the score and context products follow the Linears
  if (!cache && !(dropout_rng && (attention_dropout > 0 || hidden_dropout > 0)) && runs_bf16_inference()) {
    Mat o;
    bf16_inference(x, batch, o);
    norm.forward_sum(o, x, y, nullptr);
    return;
  }
  // Q, K and V as [n, hidden] blocks of one [n, 3*hidden] product (fused weights), else of three.
  Mat qkv, q_own, k_own, v_own;
  if (!cache && w.qkv_packed) {
    w.qkv_packed->multiply(x, qkv);
  } else if (!cache && w.qkv_int8) {
    int8_linear(x, *w.qkv_int8, w.qkv_int8_bias, qkv);
  } else if (!cache && w.query.int8_weight && w.key.int8_weight && w.value.int8_weight) {
    const QuantizedActivations xq = quantize_activations(x);  // once for the three int8 projections
    int8_linear(xq, *w.query.int8_weight, w.query.bias.value, q_own);
    int8_linear(xq, *w.key.int8_weight, w.key.bias.value, k_own);
    int8_linear(xq, *w.value.int8_weight, w.value.bias.value, v_own);
  } else {
    w.query.forward(x, q_own, cache ? &cache->in : nullptr);
    w.key.forward(x, k_own, nullptr);
    w.value.forward(x, v_own, nullptr);
  }
  const bool fused = qkv.size() > 0;
  const Eigen::Index ld = fused ? 3 * hidden : hidden;  // row stride of q, k and v
  float* q_data = fused ? qkv.data() : q_own.data();
  float* k_data = fused ? qkv.data() + hidden : k_own.data();
  float* v_data = fused ? qkv.data() + 2 * hidden : v_own.data();
  using Block = Eigen::Map<const Mat, 0, Eigen::OuterStride<>>;
  const Block q(q_data, n, hidden, Eigen::OuterStride<>(ld)), k(k_data, n, hidden, Eigen::OuterStride<>(ld)),
      v(v_data, n, hidden, Eigen::OuterStride<>(ld));

  const Eigen::Index n_blocks = batch.batch * heads;
  const bool train = dropout_rng && attention_dropout > 0;
  Mat probs;  // [(b*heads + h)*seq + i, j], the whole batch's (training and the cache)
  Mat ctx(n, hidden);
  Mat qh, kh, vh, pmask;
  // bf16 where this CPU has no bf16 kernels runs fp32 products of bf16-rounded operands
  // (model/matmul.h): Q, K, V and the probabilities are this forward's own buffers, so they are
  // rounded in place and take the fp32 path below, without head-major and rounded copies.
  const bool bf16_as_fp32 = prec == Precision::bf16 && !matmul_isa().bf16_native;
  if (!cache && !train && (prec == Precision::fp32 || bf16_as_fp32)) {
    // Inference: each (sequence, head) block of Q, K and V is read where the projections wrote
    // it, and the context is written straight into its [tokens, hidden] place (no copies).
    if (bf16_as_fp32 && fused) {
      round_to_bf16(qkv.data(), static_cast<size_t>(qkv.size()));
    } else if (bf16_as_fp32) {
      for (Mat* m : {&q_own, &k_own, &v_own}) round_to_bf16(m->data(), static_cast<size_t>(m->size()));
    }
    for_each_attention_unit(batch.batch, heads, [&](Eigen::Index b, Eigen::Index h0, Eigen::Index h1) {
      const Eigen::Index row = b * seq * ld;
      sequence_attention_fp32(q_data + row, k_data + row, v_data + row, ld, &batch.mask[static_cast<size_t>(b * seq)],
                              seq, hidden, hd, h0, h1, scale, bf16_as_fp32, ctx.data() + b * seq * hidden);
    });
  } else {
    probs.resize(n_blocks * seq, seq);
    if (train) pmask = dropout_mask(*dropout_rng, n_blocks * seq, seq, attention_dropout);
    // Head-major copies [(b*heads + h)*seq + i, hd], so that every (sequence, head) block is one
    // contiguous matrix and each product of the layer is one batched call; the cache keeps them.
    qh.resize(n_blocks * seq, hd), kh.resize(n_blocks * seq, hd), vh.resize(n_blocks * seq, hd);
    to_head_major(q, seq, heads, qh);
    to_head_major(k, seq, heads, kh);
    to_head_major(v, seq, heads, vh);
    batched_matmul(qh.data(), false, kh.data(), true, probs.data(), n_blocks, seq, hd, seq, prec);  // raw Q K^T
    masked_softmax(probs, batch, heads, scale);
    Mat ctxh(n_blocks * seq, hd);
    if (train) {
      const Mat pd = probs.cwiseProduct(pmask);
      batched_matmul(pd.data(), false, vh.data(), false, ctxh.data(), n_blocks, seq, seq, hd, prec);
    } else {
      batched_matmul(probs.data(), false, vh.data(), false, ctxh.data(), n_blocks, seq, seq, hd, prec);
    }
    from_head_major(ctxh, seq, heads, ctx);
  }

  Mat o;
  w.out.forward(ctx, o, cache ? &cache->out : nullptr);
  Mat hmask;
  if (dropout_rng && hidden_dropout > 0) {
    hmask = dropout_mask(*dropout_rng, n, hidden, hidden_dropout);
    o.array() *= hmask.array();
  }
  norm.forward_sum(o, x, y, cache ? &cache->norm : nullptr);
  if (cache) {
    cache->qh = std::move(qh);
    cache->kh = std::move(kh);
    cache->vh = std::move(vh);
    cache->probs = std::move(probs);
    cache->probs_mask = std::move(pmask);
    cache->hidden_mask = std::move(hmask);
  }
}

// Per (sequence, head) block, with Pd = P * M (dropout mask M) and ctx = Pd V:
//   dV = Pd^T dctx;  dPd = dctx V^T;  dP = dPd * M;  dS = P * (dP - rowsum(dP * P));
//   dQ = dS K * scale;  dK = dS^T Q * scale.
void Attention::backward(MatRef dy, const Batch& batch, const Cache& cache, Mat& dx, const Mat* dscores) {
  const Eigen::Index n = dy.rows(), hidden = dy.cols(), seq = batch.seq;
  const Eigen::Index hd = hidden / heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

  Attention& w = shared ? *shared : *this;  // the projections
  w.qkv_packed.reset();                      // the weights are about to be trained
  w.qkv_int8.reset();
  const Precision prec = w.query.precision;
  Mat dres;  // gradient at (x + dropout(dense(ctx))), also the residual's share of dx
  norm.backward(dy, cache.norm, dres);
  Mat dout = cache.hidden_mask.size() > 0 ? Mat(dres.cwiseProduct(cache.hidden_mask)) : dres;
  Mat dctx;
  w.out.backward(dout, cache.out, &dctx);

  const bool train = cache.probs_mask.size() > 0;
  const Eigen::Index n_blocks = batch.batch * heads;
  // Every product batched over the (sequence, head) blocks, in the forward's head-major layout;
  // the element-wise steps run on the whole [blocks*seq, seq] matrices (each row is one block's).
  Mat dctxh(n_blocks * seq, hd);
  to_head_major(dctx, seq, heads, dctxh);
  Mat dp(n_blocks * seq, seq), dvh(n_blocks * seq, hd);
  batched_matmul(dctxh.data(), false, cache.vh.data(), true, dp.data(), n_blocks, seq, hd, seq, prec);
  if (train) {
    const Mat pd = cache.probs.cwiseProduct(cache.probs_mask);
    batched_matmul(pd.data(), true, dctxh.data(), false, dvh.data(), n_blocks, seq, seq, hd, prec);
    dp.array() *= cache.probs_mask.array();
  } else {
    batched_matmul(cache.probs.data(), true, dctxh.data(), false, dvh.data(), n_blocks, seq, seq, hd, prec);
  }
  const Eigen::VectorXf dot = dp.cwiseProduct(cache.probs).rowwise().sum();
  Mat ds = cache.probs.cwiseProduct(dp - dot.replicate(1, seq));
  if (dscores) ds += *dscores;
  ds *= scale;
  Mat dqh(n_blocks * seq, hd), dkh(n_blocks * seq, hd);
  batched_matmul(ds.data(), false, cache.kh.data(), false, dqh.data(), n_blocks, seq, seq, hd, prec);
  batched_matmul(ds.data(), true, cache.qh.data(), false, dkh.data(), n_blocks, seq, seq, hd, prec);
  Mat dq(n, hidden), dk(n, hidden), dv(n, hidden);
  from_head_major(dqh, seq, heads, dq);
  from_head_major(dkh, seq, heads, dk);
  from_head_major(dvh, seq, heads, dv);

  Mat tmp;
  w.query.backward(dq, cache.in, &dx);
  w.key.backward(dk, cache.in, &tmp);
  dx += tmp;
  w.value.backward(dv, cache.in, &tmp);
  dx += tmp;
  dx += dres;
}

void Attention::pack_qkv_for_inference() {
  qkv_packed.reset();
  qkv_int8.reset();
  if (shared) return;  // a sharing block runs its owner's projections
  const Eigen::Index h = query.in();
  if (query.int8_weight && key.int8_weight && value.int8_weight) {
    qkv_int8 = std::make_shared<const PackedInt8Matrix>(
        stack_int8_rows({&*query.int8_weight, &*key.int8_weight, &*value.int8_weight}));
    qkv_int8_bias.resize(3 * h);
    qkv_int8_bias << query.bias.value.row(0), key.bias.value.row(0), value.bias.value.row(0);
    return;
  }
  if (query.int8_weight || key.int8_weight || value.int8_weight || query.precision != key.precision ||
      query.precision != value.precision)
    return;
  Mat w(3 * h, h);
  w << query.weight.value, key.weight.value, value.weight.value;
  RowVec b(3 * h);
  b << query.bias.value.row(0), key.bias.value.row(0), value.bias.value.row(0);
  qkv_packed = std::make_shared<const PackedWeight>(w, b, query.precision);
  query.packed.reset(), key.packed.reset(), value.packed.reset();  // the fused pack replaces them
}

void Attention::collect(ParamList& params) {
  if (!shared) {
    query.collect(params);
    key.collect(params);
    value.collect(params);
    out.collect(params);
  }
  norm.collect(params);
}

}  // namespace moekit
