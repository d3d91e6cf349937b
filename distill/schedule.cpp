#include "distill/schedule.h"

#include <algorithm>

namespace moekit::distill {

double LinearSchedule::at(int64_t step) const {
  if (step < warmup_steps) return peak_lr * static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
  const double left = static_cast<double>(total_steps - step);
  const double span = static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  return peak_lr * std::max(0.0, left / span);
}

}  // namespace moekit::distill
