#include "tests/support/model_gradcheck.h"

namespace moekit::test {

void check_model_gradient(BertModel& model, const Batch& batch, const std::function<double(MatRef, Mat*)>& loss,
                          const Rng* drop, const GradTolerance& tol, const std::function<std::vector<int32_t>()>& kinks) {
  auto forward = [&](ForwardCache* cache) {
    Rng d = drop ? *drop : Rng(0);
    return model.forward(batch, cache, drop ? &d : nullptr).logits;
  };
  ForwardCache cache;
  const Mat logits = forward(&cache);
  Mat dlogits;
  loss(logits, &dlogits);
  ParamList params = model.params();
  zero_grads(params);
  model.backward(batch, dlogits, cache);
  for (Param* p : params)
    check_gradient(p->name, p->value, p->grad, [&] { return loss(forward(nullptr), nullptr); }, tol,
                   kinks ? skip_if_changes(p->value, tol.eps, kinks) : nullptr);
}

}  // namespace moekit::test
