// Matrix vocabulary of the model core. Activations are row-major, one row per token.
// Dimension names used throughout (llm.c style):
//   n_tok = batch * seq   rows of every activation
//   hidden                model width (config.hidden_size)
//   heads, head_dim       attention heads and their width (hidden = heads * head_dim)
//   ffn                   intermediate size of the dense FFN
//   n_experts, expert_size  MoE layout
// Linear weights keep the Hugging Face orientation [out, in]: y = x * W^T + b.
// Biases and LayerNorm vectors are stored as [1, n] matrices so every parameter is one Mat.
#pragma once
#include <Eigen/Dense>
#include <string>

namespace moekit {

using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowVec = Eigen::Matrix<float, 1, Eigen::Dynamic>;
using MatRef = Eigen::Ref<const Mat>;

// Throws Error("what: expected [r, c], got [r', c']") when the shape differs.
void expect_shape(const Mat& m, Eigen::Index rows, Eigen::Index cols, const std::string& what);

std::string shape_str(Eigen::Index rows, Eigen::Index cols);

}  // namespace moekit
