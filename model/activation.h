// Elementwise activations of the FFN (config hidden_act) with their derivatives.
#pragma once
#include "model/config.h"
#include "model/tensor.h"

namespace moekit {

// y = act(z), elementwise.
void activation_forward(Activation act, MatRef z, Mat& y);
// y[0, n) = act(z[0, n)): the same arithmetic as activation_forward, for one row; y may be z.
void activation_values(Activation act, const float* z, float* y, Eigen::Index n);
// dz = dy * act'(z), elementwise.
void activation_backward(Activation act, MatRef z, MatRef dy, Mat& dz);

float activation_value(Activation act, float z);
float activation_derivative(Activation act, float z);

}  // namespace moekit
