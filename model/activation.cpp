#include "model/activation.h"

#include <cmath>

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

void activation_forward(Activation act, MatRef z, Mat& y) {
  y.resize(z.rows(), z.cols());
  const Eigen::Index n = z.size();
  const float* in = z.data();
  float* out = y.data();
#pragma omp parallel for schedule(static)
  for (Eigen::Index i = 0; i < n; ++i) out[i] = activation_value(act, in[i]);
}

void activation_backward(Activation act, MatRef z, MatRef dy, Mat& dz) {
  dz.resize(z.rows(), z.cols());
  const Eigen::Index n = z.size();
  const float* in = z.data();
  const float* g = dy.data();
  float* out = dz.data();
#pragma omp parallel for schedule(static)
  for (Eigen::Index i = 0; i < n; ++i) out[i] = g[i] * activation_derivative(act, in[i]);
}

}  // namespace moekit
