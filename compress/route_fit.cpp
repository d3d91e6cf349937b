#include "compress/route_fit.h"

#include <algorithm>

#include "model/activation.h"
#include "model/error.h"
#include "model/matmul.h"

namespace moekit::compress {

namespace {

// FFN inputs of MoE layer l for the examples (attention outputs), their batch structure kept.
struct LayerInputs {
  std::vector<Mat> x;        // per batch [n_tok, hidden]
  std::vector<Batch> batches;
};

LayerInputs layer_inputs(const BertModel& model, size_t l, const std::vector<Batch>& batches) {
  LayerInputs in;
  for (const Batch& b : batches) {
    Outputs out = model.forward(b, nullptr, nullptr, true);
    Mat a;
    model.layers[l].attention.forward(out.hidden_states[l], b, a, nullptr, nullptr);
    in.x.push_back(std::move(a));
    in.batches.push_back(b);
  }
  return in;
}

// Per row of x: each expert's positive activation sum [n_tok, n_experts].
Mat expert_scores(const MoeFFN& moe, const Mat& x) {
  Mat s(x.rows(), moe.n_experts());
  for (int64_t e = 0; e < moe.n_experts(); ++e) {
    const ExpertFFN& ex = moe.experts[static_cast<size_t>(e)];
    Mat z, a;
    ex.intermediate.forward(x, z, nullptr);
    activation_forward(ex.act, z, a);
    s.col(e) = a.cwiseMax(0.0f).rowwise().sum();
  }
  return s;
}

int32_t argmax(const Mat& m, Eigen::Index row) {
  Eigen::Index best;
  m.row(row).maxCoeff(&best);
  return static_cast<int32_t>(best);
}

double agreement(const Mat& features, const Mat& w, const std::vector<int32_t>& target) {
  Mat logits;
  matmul_nt(features, w, logits);
  int64_t hit = 0;
  for (Eigen::Index r = 0; r < logits.rows(); ++r) hit += argmax(logits, r) == target[static_cast<size_t>(r)];
  return target.empty() ? 0.0 : static_cast<double>(hit) / static_cast<double>(target.size());
}

}  // namespace

std::vector<RouteFitLayer> fit_routers(BertModel& model, const std::vector<io::EncodedExample>& examples_in,
                                       const RouteFitOptions& o) {
  if (!model.config.moe || !model.config.moe->gated())
    fail("", "--fit-router needs a gate router (--router gate or gate-sentence)");
  std::vector<io::EncodedExample> examples = examples_in;
  if (o.max_examples > 0 && static_cast<int64_t>(examples.size()) > o.max_examples)
    examples.resize(static_cast<size_t>(o.max_examples));
  if (examples.empty()) fail("", "--fit-router: no examples");
  std::vector<Batch> batches;
  for (const auto& idx : io::length_grouped_batches(examples, o.batch_size))
    batches.push_back(io::make_batch(examples, idx, static_cast<int32_t>(model.config.pad_token_id)));
  std::vector<RouteFitLayer> report;
  for (size_t l = 0; l < model.layers.size(); ++l) {
    EncoderLayer& layer = model.layers[l];
    if (!layer.is_moe() || !layer.moe_owner) continue;  // a shared MoE FFN is fitted at its owner layer
    MoeFFN& moe = *layer.moe;
    GateRouter& gate = std::get<GateRouter>(moe.router);
    const LayerInputs in = layer_inputs(model, l, batches);
    // Features (router inputs) and targets, real rows only.
    std::vector<Eigen::VectorXf> rows;
    std::vector<int32_t> target;
    for (size_t i = 0; i < in.x.size(); ++i) {
      const Batch& b = in.batches[i];
      const Mat s = expert_scores(moe, in.x[i]);
      for (int64_t q = 0; q < b.batch; ++q) {
        Eigen::VectorXf pooled = Eigen::VectorXf::Zero(in.x[i].cols());
        Eigen::VectorXf total = Eigen::VectorXf::Zero(s.cols());
        int64_t count = 0;
        for (int64_t t = 0; t < b.seq; ++t) {
          const int64_t r = q * b.seq + t;
          if (!b.mask[static_cast<size_t>(r)]) continue;
          if (gate.sentence) {
            pooled += in.x[i].row(r).transpose();
            total += s.row(r).transpose();
            ++count;
          } else {
            rows.push_back(in.x[i].row(r).transpose());
            target.push_back(argmax(s, r));
          }
        }
        if (gate.sentence && count > 0) {
          rows.push_back(pooled / static_cast<float>(count));
          Eigen::Index best;
          total.maxCoeff(&best);
          target.push_back(static_cast<int32_t>(best));
        }
      }
    }
    Mat x(static_cast<Eigen::Index>(rows.size()), moe.experts[0].intermediate.in());
    for (size_t r = 0; r < rows.size(); ++r) x.row(static_cast<Eigen::Index>(r)) = rows[r].transpose();
    RouteFitLayer rep;
    rep.layer = static_cast<int64_t>(l);
    rep.rows = x.rows();
    rep.agreement_before = agreement(x, gate.weight.value, target);
    // Softmax cross-entropy, mean over rows; gradient descent with momentum 0.9.
    Mat& w = gate.weight.value;
    Mat velocity = Mat::Zero(w.rows(), w.cols());
    const auto n = static_cast<float>(x.rows());
    for (int it = 0; it < o.iterations; ++it) {
      Mat p;
      matmul_nt(x, w, p);
      for (Eigen::Index r = 0; r < p.rows(); ++r) {
        p.row(r).array() -= p.row(r).maxCoeff();
        p.row(r) = p.row(r).array().exp().matrix();
        p.row(r) /= p.row(r).sum();
        p(r, target[static_cast<size_t>(r)]) -= 1.0f;
      }
      p /= n;
      Mat grad = Mat::Zero(w.rows(), w.cols());
      matmul_tn_acc(p, x, grad);
      velocity = 0.9f * velocity - static_cast<float>(o.lr) * grad;
      w += velocity;
    }
    rep.agreement_after = agreement(x, w, target);
    report.push_back(rep);
  }
  if (report.empty()) fail("", "--fit-router: the model has no MoE layer with a gate router");
  return report;
}

}  // namespace moekit::compress
