#include "model/tensor.h"

#include "model/error.h"

namespace moekit {

std::string shape_str(Eigen::Index rows, Eigen::Index cols) {
  return "[" + std::to_string(rows) + ", " + std::to_string(cols) + "]";
}

void expect_shape(const Mat& m, Eigen::Index rows, Eigen::Index cols, const std::string& what) {
  if (m.rows() != rows || m.cols() != cols)
    fail("", what + ": expected " + shape_str(rows, cols) + ", got " + shape_str(m.rows(), m.cols()));
}

}  // namespace moekit
