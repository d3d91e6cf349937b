#include "model/dropout.h"

namespace moekit {

Mat dropout_mask(Rng& rng, Eigen::Index rows, Eigen::Index cols, float p) {
  Mat mask(rows, cols);
  const float keep = 1.0f / (1.0f - p);
  float* m = mask.data();
  for (Eigen::Index i = 0; i < mask.size(); ++i) m[i] = rng.uniform() < p ? 0.0f : keep;
  return mask;
}

}  // namespace moekit
