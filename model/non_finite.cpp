#include "model/non_finite.h"

namespace moekit {

NonFinite count_non_finite(const ParamList& params) {
  NonFinite out;
  for (const Param* p : params) {
    const int64_t n = p->value.size() - p->value.array().isFinite().count();
    if (n == 0) continue;
    out.values += n;
    out.params.push_back(p->name);
  }
  return out;
}

}  // namespace moekit
