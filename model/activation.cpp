#include "model/activation.h"

#include <algorithm>
#include <cmath>

#include <unsupported/Eigen/SpecialFunctions>

#include "model/vector_math.h"

namespace moekit {

namespace {
constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
constexpr float kSqrt2OverPi = 0.79788456080286536f;
constexpr float kGeluNewCubic = 0.044715f;
}  // namespace

float activation_value(Activation act, float z) {
  switch (act) {
    case Activation::gelu:  // z * Phi(z), exact erf form (HF "gelu")
      return 0.5f * z * (1.0f + std::erf(z * kInvSqrt2));
    case Activation::gelu_new:  // tanh approximation (HF "gelu_new")
      return 0.5f * z * (1.0f + std::tanh(kSqrt2OverPi * (z + kGeluNewCubic * z * z * z)));
    case Activation::relu:
      return z > 0 ? z : 0.0f;
  }
  return 0;
}

float activation_derivative(Activation act, float z) {
  switch (act) {
    case Activation::gelu:  // Phi(z) + z * phi(z)
      return 0.5f * (1.0f + std::erf(z * kInvSqrt2)) + z * kInvSqrt2Pi * std::exp(-0.5f * z * z);
    case Activation::gelu_new: {
      const float u = kSqrt2OverPi * (z + kGeluNewCubic * z * z * z);
      const float t = std::tanh(u);
      const float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluNewCubic * z * z);
      return 0.5f * (1.0f + t) + 0.5f * z * (1.0f - t * t) * du;
    }
    case Activation::relu:
      return z > 0 ? 1.0f : 0.0f;
  }
  return 0;
}

// Vectorised (GELU: model/vector_math.h, AVX2 at run time; the others with Eigen's packet
// tanh/exp; scalar erff was a fifth of inference time), in chunks so OpenMP threads write disjoint
// ranges.
namespace {
constexpr Eigen::Index kChunk = 4096;
using ArrayMap = Eigen::Map<Eigen::ArrayXf>;
using ConstArrayMap = Eigen::Map<const Eigen::ArrayXf>;

void values(Activation act, ConstArrayMap z, ArrayMap y) {
  switch (act) {
    case Activation::gelu:
      gelu_values(z.data(), y.data(), z.size());
      break;
    case Activation::gelu_new:
      y = 0.5f * z * (1.0f + (kSqrt2OverPi * (z + kGeluNewCubic * z.cube())).tanh());
      break;
    case Activation::relu:
      y = z.max(0.0f);
      break;
  }
}

void derivatives(Activation act, ConstArrayMap z, ConstArrayMap dy, ArrayMap dz) {
  switch (act) {
    case Activation::gelu:
      gelu_derivatives(z.data(), dy.data(), dz.data(), z.size());
      break;
    case Activation::gelu_new: {
      const Eigen::ArrayXf t = (kSqrt2OverPi * (z + kGeluNewCubic * z.cube())).tanh();
      dz = dy * (0.5f * (1.0f + t) +
                 0.5f * z * (1.0f - t.square()) * kSqrt2OverPi * (1.0f + 3.0f * kGeluNewCubic * z.square()));
      break;
    }
    case Activation::relu:
      dz = (z > 0.0f).select(dy, 0.0f);
      break;
  }
}
}  // namespace

void activation_forward(Activation act, MatRef z, Mat& y) {
  y.resize(z.rows(), z.cols());
  const Eigen::Index n = z.size();
#pragma omp parallel for schedule(static)
  for (Eigen::Index start = 0; start < n; start += kChunk) {
    const Eigen::Index len = std::min(kChunk, n - start);
    values(act, ConstArrayMap(z.data() + start, len), ArrayMap(y.data() + start, len));
  }
}

void activation_values(Activation act, const float* z, float* y, Eigen::Index n) {
  for (Eigen::Index start = 0; start < n; start += kChunk) {
    const Eigen::Index len = std::min(kChunk, n - start);
    values(act, ConstArrayMap(z + start, len), ArrayMap(y + start, len));
  }
}

void activation_backward(Activation act, MatRef z, MatRef dy, Mat& dz) {
  dz.resize(z.rows(), z.cols());
  const Eigen::Index n = z.size();
#pragma omp parallel for schedule(static)
  for (Eigen::Index start = 0; start < n; start += kChunk) {
    const Eigen::Index len = std::min(kChunk, n - start);
    derivatives(act, ConstArrayMap(z.data() + start, len), ConstArrayMap(dy.data() + start, len),
                ArrayMap(dz.data() + start, len));
  }
}

}  // namespace moekit
