#include "model/param.h"

namespace moekit {

void zero_grads(const ParamList& params) {
  for (Param* p : params) p->grad_buffer().setZero();
}

size_t count_values(const ParamList& params) {
  size_t n = 0;
  for (const Param* p : params) n += static_cast<size_t>(p->value.size());
  return n;
}

}  // namespace moekit
