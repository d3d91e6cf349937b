// Fully connected layer with Hugging Face weight orientation: y = x * W^T + b, W is [out, in].
// Every product goes through model/matmul.h (oneDNN).
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "model/int8_matmul.h"
#include "model/matmul.h"
#include "model/param.h"

namespace moekit {

struct Linear {
  Param weight;  // [out, in]; empty (0 x 0) while int8_weight holds the weights
  Param bias;    // [1, out]
  // The weights as int8 for inference (an int8 export loaded with io::LoadFor::inference): forward
  // runs the int8 kernel (model/int8_matmul.h). Such a layer is inference-only; see forward.
  std::optional<PackedInt8Matrix> int8_weight;
  // Precision of the float products, forward and backward (the fp32 weights stay the master copy).
  Precision precision = Precision::fp32;
  // The float weight and bias packed once for inference at `precision` (pack_for_inference); used
  // by forward without a cache. Shared by copies of the layer; dropped by backward and by
  // set_precision, so it never outlives the weights it was made from in a training loop.
  std::shared_ptr<const PackedWeight> packed;

  struct Cache {
    Mat x;  // [n_tok, in]; empty when the forward ran bf16 kernels (x16 holds the input then)
    // x rounded to bf16, when the forward ran bf16 kernels: the backward's products read it
    // instead of rounding x again (Q, K and V share one cache: the same x). A float copy of x
    // beside it cost a copy of every Linear's input each step.
    Bf16Matrix x16;
    // The forward's input as floats: x, or x16's values written into `scratch`.
    const Mat& input(Mat& scratch) const {
      if (x.size() > 0 || x16.rows() == 0) return x;
      scratch = from_bf16(x16);
      return scratch;
    }
  };

  void init(const std::string& name, Eigen::Index in, Eigen::Index out);
  Eigen::Index in() const { return int8_weight ? int8_weight->cols : weight.value.cols(); }
  Eigen::Index out() const { return int8_weight ? int8_weight->rows : weight.value.rows(); }

  // Replaces the float weight by `q` ([out, in], else Error naming the weight); weight.value and
  // weight.grad are released, so an int8 layer costs 1 byte per weight instead of 8.
  void set_int8_weight(const QuantizedMatrix& q);
  void set_precision(Precision p);
  // Packs the current float weights for inference at `precision` (no-op for an int8 layer). The
  // weights must not change afterwards unless backward (which drops the pack) runs first.
  void pack_for_inference();

  // x: [n_tok, in] -> y: [n_tok, out]. cache == nullptr at inference. An int8 layer refuses a
  // cache (Error): it has no float weights to train.
  void forward(MatRef x, Mat& y, Cache* cache) const;
  // dy: [n_tok, out]. Writes dx (if not null), accumulates weight/bias grads. Error on an int8 layer.
  void backward(MatRef dy, const Cache& cache, Mat* dx);
  void collect(ParamList& params);
};

}  // namespace moekit
