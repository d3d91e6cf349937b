#include "model/matmul.h"

#include <array>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include <dnnl.hpp>

#include "model/error.h"
#include "model/onednn_common.h"

namespace moekit {

using namespace onednn;

namespace {

// Shapes, strides and types of a product, flat: building the key allocates nothing (attention
// runs thousands of small products per forward).
using Key = std::array<int64_t, 16>;

// Primitives by their full description; oneDNN builds (and JIT-compiles) each one once per thread.
// Per thread, so the thousands of small products that attention runs from both threads at once
// take no lock (a shared map's mutex was a measurable share of the time); oneDNN's own primitive
// cache makes a second thread's copy cheap to build.
const Primitive& cached_primitive(const Operand& src, const Operand& wei, const memory::desc& dst, memory::dim ldd,
                                  bool accumulate, const std::string& kind) {
  thread_local std::map<Key, Primitive> cache;
  const Key key{src.shape[0], src.shape[1], src.strides[0], src.strides[1], static_cast<int64_t>(src.type),
                wei.shape[0],  wei.shape[1], wei.strides[0], wei.strides[1], static_cast<int64_t>(wei.type),
                ldd,           static_cast<int64_t>(dst.data_type()), accumulate, 0, 0, 0};
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  dnnl::primitive_attr attr = user_scratchpad();
  if (accumulate) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src.desc(), wei.desc(), dst), attr, cpu_engine());
  note_impl(kind, pd);
  if (cache.size() >= 16384) cache.clear();  // shapes vary with batch lengths: bound the cache
  return cache.emplace(key, Primitive(pd)).first->second;
}

// dst [M,N] (row stride ldd) = (or +=) src [M,K] * wei [K,N], operands as described.
void run_product(const Operand& src, const Operand& wei, float* dst, Eigen::Index ldd, bool accumulate,
                 const std::string& kind) {
  const memory::dim m = src.shape[0], n = wei.shape[1];
  try {
    const memory::desc dst_desc = desc2({m, n}, dt::f32, {ldd, 1});
    const Primitive& prim = cached_primitive(src, wei, dst_desc, ldd, accumulate, kind);
    dnnl::engine& eng = cpu_engine();
    execute(prim, memory(src.desc(), eng, const_cast<void*>(src.data)), memory(wei.desc(), eng, const_cast<void*>(wei.data)),
            memory(dst_desc, eng, dst));
  } catch (const dnnl::error& e) {
    rethrow(e, "matmul " + kind);
  }
}

// A row-major Eigen operand [rows, cols] as oneDNN dims {rows, cols} (transposed: {cols, rows}).
Operand float_operand(MatRef m, bool transposed) {
  const memory::dim r = m.rows(), c = m.cols(), ld = m.outerStride();
  if (transposed) return {m.data(), dt::f32, {c, r}, {1, ld}};
  return {m.data(), dt::f32, {r, c}, {ld, 1}};
}

void product(MatRef a, bool a_t, MatRef b, bool b_t, float* dst, Eigen::Index ldd, bool accumulate, Precision p,
             const std::string& what) {
  if (p == Precision::bf16)
    run_product(bf16_operand(a, a_t, 0), bf16_operand(b, b_t, 1), dst, ldd, accumulate, "bf16 " + what);
  else
    run_product(float_operand(a, a_t), float_operand(b, b_t), dst, ldd, accumulate, "fp32 " + what);
}

void expect_inner(Eigen::Index a, Eigen::Index b, const char* what) {
  if (a != b) fail("", std::string(what) + ": inner dimensions differ (" + std::to_string(a) + " vs " + std::to_string(b) + ")");
}

// The shape checks of c = op(a) op(b): Error on a mismatch; false when nothing is left for oneDNN
// (an empty output, or an empty inner dimension: c = 0 unless accumulating).
bool product_to_run(Eigen::Index a_rows, Eigen::Index a_cols, bool ta, Eigen::Index b_rows, Eigen::Index b_cols,
                    bool tb, Eigen::Ref<Mat> c, bool accumulate) {
  const Eigen::Index m = ta ? a_cols : a_rows, k = ta ? a_rows : a_cols;
  const Eigen::Index kb = tb ? b_cols : b_rows, n = tb ? b_rows : b_cols;
  expect_inner(k, kb, "matmul");
  if (c.rows() != m || c.cols() != n)
    fail("", "matmul: output is " + shape_str(c.rows(), c.cols()) + ", the product is " + shape_str(m, n));
  if (c.size() == 0) return false;
  if (k == 0) {
    if (!accumulate) c.setZero();
    return false;
  }
  return true;
}

}  // namespace

const char* precision_name(Precision p) { return p == Precision::bf16 ? "bf16" : "fp32"; }

Precision parse_precision(const std::string& s, const std::string& what) {
  if (s == "fp32") return Precision::fp32;
  if (s == "bf16") return Precision::bf16;
  fail("", what + ": unknown precision \"" + s + "\" (expected fp32 or bf16)");
}

const MatmulIsa& matmul_isa() {
  static const MatmulIsa isa = [] {
    MatmulIsa out;
    using dnnl::cpu_isa;
    switch (dnnl::get_effective_cpu_isa()) {
      case cpu_isa::sse41: out.name = "sse41"; break;
      case cpu_isa::avx: out.name = "avx"; break;
      case cpu_isa::avx2: out.name = "avx2"; break;
      case cpu_isa::avx2_vnni: out.name = "avx2_vnni", out.int8_vnni = true; break;
      case cpu_isa::avx512_core: out.name = "avx512_core"; break;
      case cpu_isa::avx512_core_vnni: out.name = "avx512_core_vnni", out.int8_vnni = true; break;
      case cpu_isa::avx512_core_bf16:
        out.name = "avx512_core_bf16", out.int8_vnni = true, out.bf16_hardware = true;
        break;
      case cpu_isa::avx512_core_amx:
        out.name = "avx512_core_amx", out.int8_vnni = true, out.bf16_hardware = true, out.bf16_native = true;
        break;
      default: out.name = "other"; break;
    }
    const char* force = std::getenv("MOEKIT_BF16_KERNELS");
    if (force && std::string(force) == "bf16") out.bf16_native = out.bf16_hardware;
    return out;
  }();
  return isa;
}

std::string matmul_impls() { return onednn::impls_text(); }

int int8_max_activation() { return matmul_isa().int8_vnni ? 255 : 127; }

void round_to_bf16(float* data, size_t n) {
  convert_bf16(data, 1, static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(n), data);
}

void Bf16Matrix::resize(Eigen::Index rows, Eigen::Index cols) {
  const size_t n = static_cast<size_t>(rows * cols);
  if (n > capacity_) {
    data_.reset(new uint16_t[n]);  // not value-initialised: the caller overwrites every entry
    capacity_ = n;
  }
  rows_ = rows, cols_ = cols;
}

Bf16Matrix::Bf16Matrix(const Bf16Matrix& other) { *this = other; }

Bf16Matrix& Bf16Matrix::operator=(const Bf16Matrix& other) {
  if (this == &other) return *this;
  resize(other.rows_, other.cols_);
  if (rows_ * cols_ > 0)
    std::memcpy(data_.get(), other.data_.get(), sizeof(uint16_t) * static_cast<size_t>(rows_ * cols_));
  return *this;
}

void to_bf16(MatRef x, Bf16Matrix& out) {
  out.resize(x.rows(), x.cols());
  if (x.size() > 0) convert_bf16(x.data(), x.rows(), x.cols(), x.outerStride(), out.data());
}

Mat from_bf16(const Bf16Matrix& x) {
  Mat out(x.rows(), x.cols());
  for (Eigen::Index i = 0; i < out.size(); ++i) {
    const uint32_t u = static_cast<uint32_t>(x.data()[i]) << 16;
    std::memcpy(out.data() + i, &u, 4);
  }
  return out;
}

void matmul(MatRef a, bool ta, MatRef b, bool tb, Eigen::Ref<Mat> c, bool accumulate, Precision p) {
  if (!product_to_run(a.rows(), a.cols(), ta, b.rows(), b.cols(), tb, c, accumulate)) return;
  product(a, ta, b, tb, c.data(), c.outerStride(), accumulate, p, "matmul");
}

void matmul(const Bf16Matrix& a, bool ta, const Bf16Matrix& b, bool tb, Eigen::Ref<Mat> c, bool accumulate) {
  if (!matmul_isa().bf16_native) fail("", "matmul: bf16 operands need bf16 kernels");
  if (!product_to_run(a.rows(), a.cols(), ta, b.rows(), b.cols(), tb, c, accumulate)) return;
  auto operand = [](const Bf16Matrix& x, bool transposed) {
    const memory::dim r = x.rows(), cols = x.cols();
    return transposed ? Operand{x.data(), dt::bf16, {cols, r}, {1, cols}} : Operand{x.data(), dt::bf16, {r, cols}, {cols, 1}};
  };
  run_product(operand(a, ta), operand(b, tb), c.data(), c.outerStride(), accumulate, "bf16 matmul");
}

// The named forms: the general one with the output sized (or, for gradients, checked) first.
void matmul_nt(MatRef x, MatRef w, Mat& y, Precision p) {
  y.resize(x.rows(), w.rows());
  matmul(x, false, w, true, y, false, p);
}

void matmul_nn(MatRef x, MatRef w, Mat& y, Precision p) {
  y.resize(x.rows(), w.cols());
  matmul(x, false, w, false, y, false, p);
}

void matmul_tn_acc(MatRef a, MatRef b, Mat& g, Precision p) {
  expect_shape(g, a.cols(), b.cols(), "matmul_tn_acc output");
  matmul(a, true, b, false, g, true, p);
}

void batched_matmul(const float* a, bool ta, const float* b, bool tb, float* c, int64_t batch, int64_t m, int64_t k,
                    int64_t n, Precision p) {
  if (batch <= 0 || m <= 0 || n <= 0) return;
  if (k <= 0) {
    std::fill(c, c + batch * m * n, 0.0f);
    return;
  }
  using Dims3 = std::array<memory::dim, 3>;
  auto desc3 = [](const Dims3& shape, dt type, const Dims3& strides) {
    dnnl_memory_desc_t d;
    dnnl::error::wrap_c_api(dnnl_memory_desc_init_by_strides(&d, 3, shape.data(), memory::convert_to_c(type), strides.data()),
                            "could not build a memory descriptor");
    return memory::desc(d);
  };
  dt type = dt::f32;
  const float* a_data = a;
  const float* b_data = b;
  const void* a_ptr = a;
  const void* b_ptr = b;
  if (p == Precision::bf16) {  // both operands rounded as bf16_operand does, contiguous already
    const size_t na = static_cast<size_t>(batch * m * k), nb = static_cast<size_t>(batch * k * n);
    if (matmul_isa().bf16_native) {
      uint16_t* ba = scratch<uint16_t>(0, na);
      uint16_t* bb = scratch<uint16_t>(1, nb);
      convert_bf16(a_data, 1, static_cast<Eigen::Index>(na), static_cast<Eigen::Index>(na), ba);
      convert_bf16(b_data, 1, static_cast<Eigen::Index>(nb), static_cast<Eigen::Index>(nb), bb);
      a_ptr = ba, b_ptr = bb, type = dt::bf16;
    } else {
      float* fa = scratch<float>(0, na);
      float* fb = scratch<float>(1, nb);
      convert_bf16(a_data, 1, static_cast<Eigen::Index>(na), static_cast<Eigen::Index>(na), fa);
      convert_bf16(b_data, 1, static_cast<Eigen::Index>(nb), static_cast<Eigen::Index>(nb), fb);
      a_ptr = fa, b_ptr = fb;
    }
  }
  const std::string kind = std::string(precision_name(p)) + " batched matmul";
  try {
    const memory::desc src = ta ? desc3({batch, m, k}, type, {m * k, 1, m}) : desc3({batch, m, k}, type, {m * k, k, 1});
    const memory::desc wei = tb ? desc3({batch, k, n}, type, {k * n, 1, k}) : desc3({batch, k, n}, type, {k * n, n, 1});
    const memory::desc dst = desc3({batch, m, n}, dt::f32, {m * n, n, 1});
    thread_local std::map<Key, Primitive> cache;
    const Key key{batch, m, k, n, ta, tb, static_cast<int64_t>(type), 1, 0, 0, 0, 0, 0, 0, 0, 0};
    auto it = cache.find(key);
    if (it == cache.end()) {
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, wei, dst), user_scratchpad(), cpu_engine());
      note_impl(kind, pd);
      if (cache.size() >= 4096) cache.clear();  // bounded as the 2-D cache
      it = cache.emplace(key, Primitive(pd)).first;
    }
    dnnl::engine& eng = cpu_engine();
    execute(it->second, memory(src, eng, const_cast<void*>(a_ptr)), memory(wei, eng, const_cast<void*>(b_ptr)),
            memory(dst, eng, c));
  } catch (const dnnl::error& e) {
    rethrow(e, "matmul " + kind);
  }
}

void strided_batched_matmul(const StridedMatrices& a, const StridedMatrices& b, const StridedMatrices& c, int64_t b0,
                            int64_t b1, int64_t m, int64_t k, int64_t n) {
  if (b0 <= 0 || b1 <= 0 || m <= 0 || n <= 0) return;
  if (a.bf16 != b.bf16) fail("", "strided_batched_matmul: operands of different types (fp32 and bf16)");
  if (k <= 0) {
    for (int64_t i = 0; i < b0; ++i)
      for (int64_t j = 0; j < b1; ++j)
        for (int64_t r = 0; r < m; ++r)
          for (int64_t q = 0; q < n; ++q) {
            const int64_t at = i * c.s0 + j * c.s1 + r * c.row + q * c.col;
            if (c.bf16)
              static_cast<uint16_t*>(c.data)[at] = 0;
            else
              static_cast<float*>(c.data)[at] = 0.0f;
          }
    return;
  }
  using Dims4 = std::array<memory::dim, 4>;
  auto desc4 = [](const Dims4& shape, const StridedMatrices& x) {
    const Dims4 strides{x.s0, x.s1, x.row, x.col};
    dnnl_memory_desc_t d;
    dnnl::error::wrap_c_api(
        dnnl_memory_desc_init_by_strides(&d, 4, shape.data(), x.bf16 ? dnnl_bf16 : dnnl_f32, strides.data()),
        "could not build a memory descriptor");
    return memory::desc(d);
  };
  const std::string kind = a.bf16 ? "bf16 strided batched matmul" : "fp32 strided batched matmul";
  try {
    const memory::desc src = desc4({b0, b1, m, k}, a), wei = desc4({b0, b1, k, n}, b), dst = desc4({b0, b1, m, n}, c);
    thread_local std::map<Key, Primitive> cache;
    const int64_t types = (a.bf16 ? 1 : 0) | (c.bf16 ? 2 : 0);
    const Key key{b0,   b1,   m,    k,    n,    a.s0, a.s1, a.row ^ (a.col << 32), b.s0, b.s1, b.row ^ (b.col << 32),
                  c.s0, c.s1, c.row, c.col, types};
    auto it = cache.find(key);
    if (it == cache.end()) {
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, wei, dst), user_scratchpad(), cpu_engine());
      note_impl(kind, pd);
      if (cache.size() >= 4096) cache.clear();  // bounded as the 2-D cache
      it = cache.emplace(key, Primitive(pd)).first;
    }
    dnnl::engine& eng = cpu_engine();
    execute(it->second, memory(src, eng, a.data), memory(wei, eng, b.data), memory(dst, eng, c.data));
  } catch (const dnnl::error& e) {
    rethrow(e, "matmul " + kind);
  }
}

}  // namespace moekit
