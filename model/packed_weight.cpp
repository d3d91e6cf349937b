// PackedWeight (model/matmul.h): weights converted and laid out once for oneDNN's inference
// products, with bf16-activation and epilogue forms.
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "model/error.h"
#include "model/matmul.h"
#include "model/onednn_common.h"

namespace moekit {

using namespace onednn;

namespace {

// The oneDNN element-wise algorithm of an epilogue.
dnnl::algorithm eltwise_of(Epilogue e) {
  switch (e) {
    case Epilogue::gelu_erf: return dnnl::algorithm::eltwise_gelu_erf;
    case Epilogue::gelu_tanh: return dnnl::algorithm::eltwise_gelu_tanh;
    case Epilogue::relu: return dnnl::algorithm::eltwise_relu;
    case Epilogue::none: break;
  }
  return dnnl::algorithm::undef;
}

// The epilogue of one value, as oneDNN's eltwise algorithms define it (for the empty product).
float epilogue_value(Epilogue e, float v) {
  switch (e) {
    case Epilogue::gelu_erf: return 0.5f * v * (1.0f + std::erf(v * 0.70710678f));
    case Epilogue::gelu_tanh: return 0.5f * v * (1.0f + std::tanh(0.79788456f * (v + 0.044715f * v * v * v)));
    case Epilogue::relu: return v > 0.0f ? v : 0.0f;
    case Epilogue::none: break;
  }
  return v;
}

}  // namespace

struct PackedWeight::Impl {
  dt src_type = dt::f32, dst_type = dt::f32;
  bool emulated_bf16 = false;  // bf16 values held as floats (no bf16 matmul on this CPU)
  memory weights;              // in the layout oneDNN chose for a typical row count
  memory bias;                 // f32 {1, N}, or empty
  std::string kind;
  struct Entry {  // oneDNN handles: copies share the objects, so a copy outlives a cache clear
    Primitive primitive;
    memory weights;  // `weights`, or a re-laid-out copy when this row count wanted another layout
  };
  // One product's form besides the weights: its row count, output type and epilogue.
  struct Form {
    memory::dim m;
    dt dst;
    Epilogue epilogue;
    bool operator<(const Form& o) const {
      return std::tie(m, dst, epilogue) < std::tie(o.m, o.dst, o.epilogue);
    }
  };
  mutable std::mutex mutex;
  mutable std::map<Form, Entry> by_form;

  dnnl::matmul::primitive_desc make_pd(const Form& f, memory::dim k, memory::dim n, const memory::desc& wei) const {
    const memory::desc src({f.m, k}, src_type, dims{k, 1});
    const memory::desc dst({f.m, n}, f.dst, dims{n, 1});
    dnnl::primitive_attr attr = user_scratchpad();
    if (f.epilogue != Epilogue::none) {
      dnnl::post_ops ops;
      ops.append_eltwise(1.0f, eltwise_of(f.epilogue), 0.0f, 0.0f);
      attr.set_post_ops(ops);
    }
    if (bias)
      return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wei, bias.get_desc(), dst), attr, cpu_engine());
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wei, dst), attr, cpu_engine());
  }

  // Packs `plain` ({K,N} view of the [N,K] weight) into the layout preferred at a typical size.
  void pack(const memory& plain, memory::dim k, memory::dim n) {
    constexpr memory::dim kTypicalRows = 256;
    const memory::desc any({k, n}, plain.get_desc().data_type(), memory::format_tag::any);
    const memory::desc chosen = make_pd({kTypicalRows, dst_type, Epilogue::none}, k, n, any).weights_desc();
    weights = memory(chosen, cpu_engine());
    dnnl::reorder(plain, weights).execute(cpu_stream(), const_cast<memory&>(plain), weights);
    cpu_stream().wait();
  }

  // By value: another thread may clear the cache while this one runs the product.
  Entry entry(const Form& f, memory::dim k, memory::dim n) const {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = by_form.find(f);
    if (it != by_form.end()) return it->second;
    if (by_form.size() >= 4096) by_form.clear();  // row counts vary with batches: bound the cache
    try {
      const dnnl::matmul::primitive_desc pd = make_pd(f, k, n, weights.get_desc());
      note_impl(kind, pd, f.m);
      return by_form.emplace(f, Entry{Primitive(pd), weights}).first->second;
    } catch (const dnnl::error&) {
      // No kernel takes the packed layout at this row count: re-lay it out once for this size.
      const memory::desc any({k, n}, weights.get_desc().data_type(), memory::format_tag::any);
      const dnnl::matmul::primitive_desc pd = make_pd(f, k, n, any);
      memory w(pd.weights_desc(), cpu_engine());
      dnnl::reorder(weights, w).execute(cpu_stream(), const_cast<memory&>(weights), w);
      cpu_stream().wait();
      note_impl(kind, pd, f.m);
      return by_form.emplace(f, Entry{Primitive(pd), w}).first->second;
    }
  }

  void run(const void* src, memory::dim m, memory::dim k, memory::dim n, void* dst) const {
    run(src, {m, dst_type, Epilogue::none}, k, n, dst);
  }
  void run(const void* src, const Form& f, memory::dim k, memory::dim n, void* dst) const {
    const Entry e = entry(f, k, n);
    const memory s(memory::desc({f.m, k}, src_type, dims{k, 1}), cpu_engine(), const_cast<void*>(src));
    const memory d(memory::desc({f.m, n}, f.dst, dims{n, 1}), cpu_engine(), dst);
    execute(e.primitive, s, e.weights, d, bias ? &bias : nullptr);
  }
};

PackedWeight::PackedWeight(const Mat& w, const RowVec& b, Precision p)
    : kind_(p == Precision::bf16 ? Kind::bf16 : Kind::fp32), rows_(w.rows()), cols_(w.cols()), impl_(new Impl) {
  const memory::dim n = rows_, k = cols_;
  if (b.size() != 0 && b.size() != n)
    fail("", "PackedWeight: bias has " + std::to_string(b.size()) + " entries, expected " + std::to_string(n));
  Impl& im = *impl_;
  im.kind = std::string(precision_name(p)) + " packed";
  try {
    if (b.size() != 0) {
      im.bias = memory(memory::desc({1, n}, dt::f32, dims{n, 1}), cpu_engine());
      std::memcpy(im.bias.get_data_handle(), b.data(), sizeof(float) * static_cast<size_t>(n));
    }
    if (n == 0 || k == 0) return;
    const dims wt_strides{1, k};  // [N,K] row-major seen as {K,N}
    if (p == Precision::fp32) {
      im.pack(memory(memory::desc({k, n}, dt::f32, wt_strides), cpu_engine(), const_cast<float*>(w.data())), k, n);
    } else if (matmul_isa().bf16_native) {
      std::vector<uint16_t> bits(static_cast<size_t>(n * k));
      convert_bf16(w.data(), n, k, k, bits.data());
      im.src_type = dt::bf16;
      bf16_native_ = true;
      im.pack(memory(memory::desc({k, n}, dt::bf16, wt_strides), cpu_engine(), bits.data()), k, n);
    } else {
      Mat rounded(n, k);
      convert_bf16(w.data(), n, k, k, rounded.data());
      im.emulated_bf16 = true;
      im.pack(memory(memory::desc({k, n}, dt::f32, wt_strides), cpu_engine(), rounded.data()), k, n);
    }
  } catch (const dnnl::error& e) {
    rethrow(e, "packing a " + std::string(precision_name(p)) + " weight " + shape_str(n, k));
  }
}

PackedWeight::PackedWeight(const int8_t* q, Eigen::Index n, Eigen::Index k)
    : kind_(Kind::int8), rows_(n), cols_(k), impl_(new Impl) {
  Impl& im = *impl_;
  im.kind = "int8 packed";
  im.src_type = dt::u8;
  im.dst_type = dt::s32;
  if (n == 0 || k == 0) return;
  try {
    im.pack(memory(memory::desc({k, n}, dt::s8, dims{1, k}), cpu_engine(), const_cast<int8_t*>(q)), k, n);
  } catch (const dnnl::error& e) {
    rethrow(e, "packing an int8 weight " + shape_str(n, k));
  }
}

PackedWeight::~PackedWeight() = default;

void PackedWeight::multiply(MatRef x, Mat& y, Epilogue epilogue) const {
  if (kind_ == Kind::int8) fail("", "PackedWeight::multiply: an int8 weight takes quantised input (multiply_int8)");
  if (x.cols() != cols_)
    fail("", "PackedWeight: input has " + std::to_string(x.cols()) + " columns, weight expects " + std::to_string(cols_));
  const Impl& im = *impl_;
  y.resize(x.rows(), rows_);
  if (y.size() == 0) return;
  if (cols_ == 0) {  // no product for oneDNN to run: the epilogue of the bias alone
    y.setZero();
    if (im.bias) y.rowwise() += Eigen::Map<const RowVec>(static_cast<const float*>(im.bias.get_data_handle()), rows_);
    if (epilogue != Epilogue::none) y = y.unaryExpr([epilogue](float v) { return epilogue_value(epilogue, v); });
    return;
  }
  try {
    const void* src = x.data();
    if (kind_ == Kind::bf16) {
      src = bf16_operand(x, false, 0).data;
    } else if (x.outerStride() != cols_) {
      float* buf = scratch<float>(0, static_cast<size_t>(x.size()));
      Eigen::Map<Mat>(buf, x.rows(), x.cols()) = x;
      src = buf;
    }
    im.run(src, {x.rows(), im.dst_type, epilogue}, cols_, rows_, y.data());
  } catch (const dnnl::error& e) {
    rethrow(e, "matmul " + im.kind);
  }
}

void PackedWeight::multiply_int8(const uint8_t* xq, Eigen::Index m, int32_t* acc) const {
  if (kind_ != Kind::int8) fail("", "PackedWeight::multiply_int8: not an int8 weight");
  if (m == 0 || rows_ == 0) return;
  if (cols_ == 0) {
    std::fill(acc, acc + m * rows_, 0);
    return;
  }
  try {
    impl_->run(xq, m, cols_, rows_, acc);
  } catch (const dnnl::error& e) {
    rethrow(e, "matmul int8");
  }
}

std::vector<int8_t> PackedWeight::int8_values() const {
  if (kind_ != Kind::int8) fail("", "PackedWeight::int8_values: not an int8 weight");
  std::vector<int8_t> q(static_cast<size_t>(rows_ * cols_));
  if (q.empty()) return q;
  try {
    const memory::dim n = rows_, k = cols_;
    memory plain(memory::desc({k, n}, dt::s8, dims{1, k}), cpu_engine(), q.data());
    const memory& packed = impl_->weights;
    dnnl::reorder(packed, plain).execute(cpu_stream(), const_cast<memory&>(packed), plain);
    cpu_stream().wait();
  } catch (const dnnl::error& e) {
    rethrow(e, "reading back an int8 weight " + shape_str(rows_, cols_));
  }
  return q;
}

void PackedWeight::multiply(MatRef x, Bf16Matrix& y, Epilogue epilogue) const {
  if (!bf16_activations()) fail("", "PackedWeight: bf16 activations need a bf16 weight on bf16 kernels");
  if (x.cols() != cols_)
    fail("", "PackedWeight: input has " + std::to_string(x.cols()) + " columns, weight expects " + std::to_string(cols_));
  y.resize(x.rows(), rows_);
  if (x.rows() == 0 || rows_ == 0) return;
  if (cols_ == 0) {  // no product for oneDNN to run: the epilogue of the bias alone
    Mat yf = Mat::Zero(x.rows(), rows_);
    if (impl_->bias) yf.rowwise() += Eigen::Map<const RowVec>(static_cast<const float*>(impl_->bias.get_data_handle()), rows_);
    yf = yf.unaryExpr([epilogue](float v) { return epilogue_value(epilogue, v); });
    to_bf16(yf, y);
    return;
  }
  try {
    impl_->run(bf16_operand(x, false, 0).data, {x.rows(), dt::bf16, epilogue}, cols_, rows_, y.data());
  } catch (const dnnl::error& e) {
    rethrow(e, "matmul " + impl_->kind);
  }
}

void PackedWeight::multiply(const Bf16Matrix& x, Mat& y) const {
  if (!bf16_activations()) fail("", "PackedWeight: bf16 activations need a bf16 weight on bf16 kernels");
  if (x.cols() != cols_)
    fail("", "PackedWeight: input has " + std::to_string(x.cols()) + " columns, weight expects " + std::to_string(cols_));
  y.resize(x.rows(), rows_);
  if (y.size() == 0) return;
  if (cols_ == 0) {
    y.setZero();
    if (impl_->bias) y.rowwise() += Eigen::Map<const RowVec>(static_cast<const float*>(impl_->bias.get_data_handle()), rows_);
    return;
  }
  try {
    impl_->run(x.data(), x.rows(), cols_, rows_, y.data());
  } catch (const dnnl::error& e) {
    rethrow(e, "matmul " + impl_->kind);
  }
}

}  // namespace moekit
