// Fully connected layer with Hugging Face weight orientation: y = x * W^T + b, W is [out, in].
#pragma once
#include <optional>
#include <string>

#include "model/int8_matmul.h"
#include "model/param.h"

namespace moekit {

struct Linear {
  Param weight;  // [out, in]; empty (0 x 0) while int8_weight holds the weights
  Param bias;    // [1, out]
  // The weights as int8 for inference (an int8 export loaded with io::LoadFor::inference): forward
  // runs the int8 kernel (model/int8_matmul.h). Such a layer is inference-only; see forward.
  std::optional<PackedInt8Matrix> int8_weight;

  struct Cache {
    Mat x;  // [n_tok, in]
  };

  void init(const std::string& name, Eigen::Index in, Eigen::Index out);
  Eigen::Index in() const { return int8_weight ? int8_weight->cols : weight.value.cols(); }
  Eigen::Index out() const { return int8_weight ? int8_weight->rows : weight.value.rows(); }

  // Replaces the float weight by `q` ([out, in], else Error naming the weight); weight.value and
  // weight.grad are released, so an int8 layer costs 1 byte per weight instead of 8.
  void set_int8_weight(const QuantizedMatrix& q);

  // x: [n_tok, in] -> y: [n_tok, out]. cache == nullptr at inference. An int8 layer refuses a
  // cache (Error): it has no float weights to train.
  void forward(MatRef x, Mat& y, Cache* cache) const;
  // dy: [n_tok, out]. Writes dx (if not null), accumulates weight/bias grads. Error on an int8 layer.
  void backward(MatRef dy, const Cache& cache, Mat* dx);
  void collect(ParamList& params);
};

}  // namespace moekit
