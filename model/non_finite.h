// NaN or Inf values among a model's parameters (a corrupt or diverged model), for inspect.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/param.h"

namespace moekit {

struct NonFinite {
  int64_t values = 0;
  std::vector<std::string> params;  // names of the parameters holding them, in list order
};

NonFinite count_non_finite(const ParamList& params);

}  // namespace moekit
