// Inverted dropout: kept units are scaled by 1/(1-p) in training, identity at inference.
#pragma once
#include "model/rng.h"
#include "model/tensor.h"

namespace moekit {

// A mask of 0 and 1/(1-p), drawn serially from rng (so results do not depend on thread count).
Mat dropout_mask(Rng& rng, Eigen::Index rows, Eigen::Index cols, float p);

}  // namespace moekit
