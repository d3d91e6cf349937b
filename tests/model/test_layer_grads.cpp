// Every layer's backward against central finite differences (tolerances in gradcheck.h).
#include <omp.h>

#include <vector>

#include <catch2/catch.hpp>

#include "model/activation.h"
#include "model/attention.h"
#include "model/dense_ffn.h"
#include "model/embeddings.h"
#include "model/encoder_layer.h"
#include "model/layer_norm.h"
#include "model/linear.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::test;

namespace {

void fill(Param& p, Rng& rng, double scale) { p.value = random_mat(rng, p.value.rows(), p.value.cols(), scale); }

void check_params(const ParamList& params, const std::function<double()>& loss, const GradTolerance& tol = {}) {
  for (Param* p : params) check_gradient(p->name, p->value, p->grad, loss, tol);
}

}  // namespace

TEST_CASE("Linear backward matches finite differences", "[model][grad]") {
  Rng rng(1);
  Linear lin;
  lin.init("lin", 5, 3);
  fill(lin.weight, rng, 0.5);
  fill(lin.bias, rng, 0.5);
  Mat x = random_mat(rng, 4, 5), r = random_mat(rng, 4, 3);
  auto loss = [&] {
    Mat y;
    lin.forward(x, y, nullptr);
    return weighted_sum(r, y);
  };
  Linear::Cache cache;
  Mat y, dx;
  lin.forward(x, y, &cache);
  lin.backward(r, cache, &dx);
  check_gradient("x", x, dx, loss);
  ParamList params;
  lin.collect(params);
  check_params(params, loss);
}

TEST_CASE("LayerNorm backward matches finite differences", "[model][grad]") {
  Rng rng(2);
  LayerNorm ln;
  ln.init("ln", 8, 1e-12f);
  fill(ln.weight, rng, 1.0);
  fill(ln.bias, rng, 1.0);
  Mat x = random_mat(rng, 5, 8, 2.0), r = random_mat(rng, 5, 8);
  auto loss = [&] {
    Mat y;
    ln.forward(x, y, nullptr);
    return weighted_sum(r, y);
  };
  LayerNorm::Cache cache;
  Mat y, dx;
  ln.forward(x, y, &cache);
  ln.backward(r, cache, dx);
  check_gradient("x", x, dx, loss);
  ParamList params;
  ln.collect(params);
  check_params(params, loss);
}

// Over 64 rows the weight and bias gradients are summed in 64-row blocks: 150 rows (three
// blocks, the last partial) must give the double-precision column sums, identically at 1, 2 and
// 3 threads, and add to what the gradients held.
TEST_CASE("LayerNorm's weight and bias gradients over many rows: exact sums, any thread count", "[model][grad]") {
  Rng rng(4);
  LayerNorm ln;
  ln.init("ln", 24, 1e-12f);
  fill(ln.weight, rng, 1.0);
  const Mat x = random_mat(rng, 150, 24, 2.0), dy = random_mat(rng, 150, 24);
  LayerNorm::Cache cache;
  Mat y, dx;
  ln.forward(x, y, &cache);
  const MatD expected_w = (dy.cast<double>().cwiseProduct(cache.xhat.cast<double>())).colwise().sum().array() + 1.0;
  const MatD expected_b = dy.cast<double>().colwise().sum().array() + 1.0;
  const int saved = omp_get_max_threads();
  std::vector<Mat> w_grads, b_grads;
  for (int t : {1, 2, 3}) {
    omp_set_num_threads(t);
    ln.weight.grad_buffer().setOnes();  // accumulated onto
    ln.bias.grad_buffer().setOnes();
    ln.backward(dy, cache, dx);
    w_grads.push_back(ln.weight.grad);
    b_grads.push_back(ln.bias.grad);
  }
  omp_set_num_threads(saved);
  CHECK((w_grads[0].cast<double>() - expected_w).cwiseAbs().maxCoeff() < 1e-4);
  CHECK((b_grads[0].cast<double>() - expected_b).cwiseAbs().maxCoeff() < 1e-4);
  CHECK(w_grads[1] == w_grads[0]);
  CHECK(w_grads[2] == w_grads[0]);
  CHECK(b_grads[1] == b_grads[0]);
  CHECK(b_grads[2] == b_grads[0]);
}

TEST_CASE("Activation derivatives match finite differences", "[model][grad]") {
  for (Activation act : {Activation::gelu, Activation::gelu_new, Activation::relu}) {
    INFO(activation_name(act));
    Rng rng(3);
    Mat z = random_mat(rng, 6, 7, 2.0), r = random_mat(rng, 6, 7);
    auto loss = [&] {
      Mat y;
      activation_forward(act, z, y);
      return weighted_sum(r, y);
    };
    Mat dz;
    activation_backward(act, z, r, dz);
    const Mat z0 = z;
    // ReLU has a kink at 0: skip entries within eps of it (grad_expect in ggml's harness).
    check_gradient("z", z, dz, loss, {}, [&](Eigen::Index i) { return std::abs(z0.data()[i]) < 0.05f; });
  }
}

TEST_CASE("Embeddings backward matches finite differences", "[model][grad]") {
  for (const char* type : {"bert", "roberta"}) {
    INFO(type);
    BertConfig c = tiny_config();
    c.model_type = type;
    c.pad_token_id = std::string(type) == "roberta" ? 1 : 0;
    Embeddings emb;
    emb.init(c);
    Rng rng(4);
    for (Param* p : std::vector<Param*>{&emb.word, &emb.position, &emb.token_type, &emb.norm.weight, &emb.norm.bias})
      fill(*p, rng, 0.5);
    Batch b = tiny_batch(c, {5, 3}, 9);
    Mat r = random_mat(rng, b.n_tok(), c.hidden_size);
    const Rng drop(77);
    auto loss = [&] {
      Mat y;
      Rng d = drop;
      emb.forward(b, y, nullptr, &d);
      return weighted_sum(r, y);
    };
    Embeddings::Cache cache;
    Mat y;
    Rng d = drop;
    emb.forward(b, y, &cache, &d);
    emb.backward(b, r, cache);
    ParamList params;
    emb.collect(params);
    check_params(params, loss);
  }
}

TEST_CASE("Attention backward matches finite differences (padding mask, eval and train)", "[model][grad]") {
  for (bool train : {false, true}) {
    INFO("train " << train);
    BertConfig c = tiny_config();
    Attention att;
    att.init("att.", c);
    Rng rng(5);
    ParamList params;
    att.collect(params);
    for (Param* p : params) fill(*p, rng, 0.4);
    Batch b = tiny_batch(c, {6, 4, 2}, 11);
    Mat x = random_mat(rng, b.n_tok(), c.hidden_size), r = random_mat(rng, b.n_tok(), c.hidden_size);
    const Rng drop(78);
    auto loss = [&] {
      Mat y;
      Rng d = drop;
      att.forward(x, b, y, nullptr, train ? &d : nullptr);
      return weighted_sum(r, y);
    };
    Attention::Cache cache;
    Mat y, dx;
    Rng d = drop;
    att.forward(x, b, y, &cache, train ? &d : nullptr);
    att.backward(r, b, cache, dx);
    check_gradient("x", x, dx, loss);
    check_params(params, loss);
  }
}

TEST_CASE("DenseFFN backward matches finite differences", "[model][grad]") {
  for (Activation act : {Activation::gelu, Activation::gelu_new}) {
    for (bool train : {false, true}) {
      INFO(activation_name(act) << " train " << train);
      BertConfig c = tiny_config(act);
      DenseFFN ffn;
      ffn.init("ffn.", c);
      Rng rng(6);
      ParamList params;
      ffn.collect(params);
      for (Param* p : params) fill(*p, rng, 0.4);
      Mat x = random_mat(rng, 7, c.hidden_size), r = random_mat(rng, 7, c.hidden_size);
      const Rng drop(79);
      auto loss = [&] {
        Mat y;
        Rng d = drop;
        ffn.forward(x, y, nullptr, train ? &d : nullptr);
        return weighted_sum(r, y);
      };
      DenseFFN::Cache cache;
      Mat y, dx;
      Rng d = drop;
      ffn.forward(x, y, &cache, train ? &d : nullptr);
      ffn.backward(r, cache, dx);
      check_gradient("x", x, dx, loss);
      check_params(params, loss);
    }
  }
}

TEST_CASE("EncoderLayer backward matches finite differences", "[model][grad]") {
  BertConfig c = tiny_config();
  EncoderLayer layer;
  layer.init("layer.", c);
  Rng rng(7);
  ParamList params;
  layer.collect(params);
  for (Param* p : params) fill(*p, rng, 0.3);
  Batch b = tiny_batch(c, {5, 3}, 12);
  Mat x = random_mat(rng, b.n_tok(), c.hidden_size), r = random_mat(rng, b.n_tok(), c.hidden_size);
  auto loss = [&] {
    Mat y;
    layer.forward(x, b, y, nullptr, nullptr);
    return weighted_sum(r, y);
  };
  EncoderLayer::Cache cache;
  Mat y, dx;
  layer.forward(x, b, y, &cache, nullptr);
  layer.backward(r, b, cache, dx, nullptr);
  check_gradient("x", x, dx, loss);
  check_params(params, loss);
}
