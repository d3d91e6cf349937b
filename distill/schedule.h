// Learning-rate schedule: linear warm-up from 0 to the peak, then linear decay to 0
// (HF get_linear_schedule_with_warmup).
#pragma once
#include <cstdint>

namespace moekit::distill {

struct LinearSchedule {
  double peak_lr = 5e-5;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;

  // Learning rate for optimizer step `step` (0-based).
  double at(int64_t step) const;
};

}  // namespace moekit::distill
