#include "model/dropout.h"

#include <algorithm>

namespace moekit {

// Four 16-bit uniforms per 64-bit draw (dropout needs no finer resolution than 1/65536), which
// makes mask generation 4x cheaper; still serial, so masks do not depend on the thread count.
Mat dropout_mask(Rng& rng, Eigen::Index rows, Eigen::Index cols, float p) {
  Mat mask(rows, cols);
  const float keep = 1.0f / (1.0f - p);
  const uint64_t threshold = static_cast<uint64_t>(static_cast<double>(p) * 65536.0 + 0.5);
  float* m = mask.data();
  const Eigen::Index n = mask.size();
  for (Eigen::Index i = 0; i < n; i += 4) {
    uint64_t bits = rng.next();
    for (Eigen::Index k = i; k < std::min(n, i + 4); ++k, bits >>= 16) m[k] = (bits & 0xffff) < threshold ? 0.0f : keep;
  }
  return mask;
}

}  // namespace moekit
