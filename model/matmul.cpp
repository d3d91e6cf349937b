#include "model/matmul.h"

#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include <dnnl.hpp>

#include "model/error.h"
#include "model/target_clones.h"

namespace moekit {

namespace {

using dnnl::memory;
using dt = memory::data_type;
using dims = memory::dims;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// CPU streams are cheap; one per thread, so products may run from several threads at once.
dnnl::stream& cpu_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

// Every primitive here takes its scratchpad from the thread that runs it (scratchpad_mode::user).
// In the library's own mode, Debian's oneDNN (built without DNNL_ENABLE_CONCURRENT_EXEC) shares
// one scratchpad between executions, and two threads running brgemm products at once (MoE
// experts on row chunks, AVX-512) overwrote each other's partial results.
dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// This thread's scratchpad, at least as large as `d` asks (grown, never shrunk; one product at
// a time per thread).
memory thread_scratchpad(const memory::desc& d) {
  struct Buffer {
    void* data = nullptr;
    size_t size = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buffer;
  const size_t need = d.get_size();
  if (need > buffer.size) {
    std::free(buffer.data);
    buffer.size = 0;
    buffer.data = std::aligned_alloc(64, (need + 63) / 64 * 64);
    if (!buffer.data) throw std::bad_alloc();
    buffer.size = (need + 63) / 64 * 64;
  }
  return memory(d, cpu_engine(), buffer.data);
}

// A primitive with the scratchpad it asks for.
struct Primitive {
  dnnl::matmul prim;
  memory::desc scratchpad;
  explicit Primitive(const dnnl::matmul::primitive_desc& pd) : prim(pd), scratchpad(pd.scratchpad_desc()) {}
};

// Runs dst = src * wei (+ bias) on this thread's stream and scratchpad, and waits. The C call takes
// a fixed array of arguments (the C++ one builds an unordered_map per call).
void execute(const Primitive& p, const memory& src, const memory& wei, const memory& dst, const memory* bias = nullptr) {
  dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, src.get()}, {DNNL_ARG_WEIGHTS, wei.get()}, {DNNL_ARG_DST, dst.get()}, {}, {}};
  int n = 3;
  if (bias) args[n++] = {DNNL_ARG_BIAS, bias->get()};
  memory pad;
  if (p.scratchpad.get_size() != 0) {
    pad = thread_scratchpad(p.scratchpad);
    args[n++] = {DNNL_ARG_SCRATCHPAD, pad.get()};
  }
  dnnl::error::wrap_c_api(dnnl_primitive_execute(p.prim.get(), cpu_stream().get(), n, args), "could not execute a matmul");
  cpu_stream().wait();
}

// oneDNN reports its failures as dnnl::error; the library's callers expect moekit::Error.
[[noreturn]] void rethrow(const dnnl::error& e, const std::string& what) {
  fail("", "oneDNN " + what + ": " + e.what());
}

std::mutex impl_mutex;
struct NotedImpl {
  std::string name;  // "gemm:jit"
  int64_t rows = -1;
};
std::map<std::string, NotedImpl> impl_by_kind;  // "fp32 packed" -> the kernel of its largest product

// Records the kernel of a kind of product. Where the caller gives row counts, the largest product
// seen names the kind: oneDNN picks other kernels for a classifier's single rows, which do not
// explain a bench row's speed.
void note_impl(const std::string& kind, const dnnl::matmul::primitive_desc& pd, int64_t rows = 0) {
  std::lock_guard<std::mutex> lock(impl_mutex);
  NotedImpl& n = impl_by_kind[kind];
  if (rows >= n.rows) n = {pd.impl_info_str(), rows};
}

// float bits rounded to the nearest bf16 (ties to even), low half zero; a NaN stays a quiet NaN.
// Branch-free, so the conversion loops below vectorise.
inline uint32_t bf16_rounded_bits(uint32_t u) {
  const int32_t magnitude = static_cast<int32_t>(u & 0x7fffffffu);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  const uint32_t quiet_nan = (u | 0x00400000u) & 0xffff0000u;
  return magnitude > 0x7f800000 ? quiet_nan : rounded;
}

// Copies a strided row-major block [rows, cols] (row stride ld) contiguously, converted: to
// bf16 bits, or to floats rounded to bf16 (the emulation on CPUs without bf16 matmuls). Every
// bf16 product converts its activations, so the loops are built for AVX-512 and AVX2 as well as
// the baseline, and the CPU picks one when the program starts (no -m flags needed).
MOEKIT_CLONES void convert_bf16(const float* src, Eigen::Index rows, Eigen::Index cols, Eigen::Index ld, uint16_t* dst) {
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
  for (Eigen::Index r = 0; r < rows; ++r) {
    const float* in = src + r * ld;
    uint16_t* out = dst + r * cols;
    for (Eigen::Index c = 0; c < cols; ++c) {
      uint32_t u;
      std::memcpy(&u, &in[c], 4);
      out[c] = static_cast<uint16_t>(bf16_rounded_bits(u) >> 16);
    }
  }
}
MOEKIT_CLONES void convert_bf16(const float* src, Eigen::Index rows, Eigen::Index cols, Eigen::Index ld, float* dst) {
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
  for (Eigen::Index r = 0; r < rows; ++r) {
    const float* in = src + r * ld;
    float* out = dst + r * cols;
    for (Eigen::Index c = 0; c < cols; ++c) {
      uint32_t u;
      std::memcpy(&u, &in[c], 4);
      u = bf16_rounded_bits(u);
      std::memcpy(&out[c], &u, 4);
    }
  }
}

// Scratch buffers kept per thread and grown, never shrunk: no allocation per product once warm.
template <typename T>
T* scratch(int slot, size_t n) {
  thread_local std::vector<T> buffers[3];
  std::vector<T>& b = buffers[slot];
  if (b.size() < n) b.resize(n);
  return b.data();
}

// One operand as oneDNN sees it: data, type, dims and strides.
// Fixed-size dims and the C API's descriptor init: a product's set-up allocates nothing.
using Dims2 = std::array<memory::dim, 2>;

memory::desc desc2(const Dims2& shape, dt type, const Dims2& strides) {
  dnnl_memory_desc_t d;
  dnnl::error::wrap_c_api(dnnl_memory_desc_init_by_strides(&d, 2, shape.data(), memory::convert_to_c(type), strides.data()),
                          "could not build a memory descriptor");
  return memory::desc(d);
}

struct Operand {
  const void* data;
  dt type;
  Dims2 shape, strides;
  memory::desc desc() const { return desc2(shape, type, strides); }
};

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

// The operand rounded to bf16 into scratch `slot`: bf16 bits where oneDNN has bf16 matmuls, else
// floats holding bf16 values (see the header).
Operand bf16_operand(MatRef m, bool transposed, int slot) {
  const memory::dim r = m.rows(), c = m.cols();
  const size_t n = static_cast<size_t>(r * c);
  Operand op{nullptr, dt::f32, transposed ? Dims2{c, r} : Dims2{r, c}, transposed ? Dims2{1, c} : Dims2{c, 1}};
  if (matmul_isa().bf16_native) {
    uint16_t* buf = scratch<uint16_t>(slot, n);
    convert_bf16(m.data(), r, c, m.outerStride(), buf);
    op.data = buf;
    op.type = dt::bf16;
  } else {
    float* buf = scratch<float>(slot, n);
    convert_bf16(m.data(), r, c, m.outerStride(), buf);
    op.data = buf;
  }
  return op;
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

std::string matmul_impls() {
  std::lock_guard<std::mutex> lock(impl_mutex);
  std::string out;
  for (const auto& [kind, impl] : impl_by_kind) out += (out.empty() ? "" : ", ") + kind + " " + impl.name;
  return out;
}

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
  const Eigen::Index m = ta ? a.cols() : a.rows(), k = ta ? a.rows() : a.cols();
  const Eigen::Index kb = tb ? b.cols() : b.rows(), n = tb ? b.rows() : b.cols();
  expect_inner(k, kb, "matmul");
  if (c.rows() != m || c.cols() != n)
    fail("", "matmul: output is " + shape_str(c.rows(), c.cols()) + ", the product is " + shape_str(m, n));
  if (c.size() == 0) return;
  if (k == 0) {
    if (!accumulate) c.setZero();
    return;
  }
  product(a, ta, b, tb, c.data(), c.outerStride(), accumulate, p, "matmul");
}

void matmul(const Bf16Matrix& a, bool ta, const Bf16Matrix& b, bool tb, Eigen::Ref<Mat> c, bool accumulate) {
  if (!matmul_isa().bf16_native) fail("", "matmul: bf16 operands need bf16 kernels");
  const Eigen::Index m = ta ? a.cols() : a.rows(), k = ta ? a.rows() : a.cols();
  const Eigen::Index kb = tb ? b.cols() : b.rows(), n = tb ? b.rows() : b.cols();
  expect_inner(k, kb, "matmul");
  if (c.rows() != m || c.cols() != n)
    fail("", "matmul: output is " + shape_str(c.rows(), c.cols()) + ", the product is " + shape_str(m, n));
  if (c.size() == 0) return;
  if (k == 0) {
    if (!accumulate) c.setZero();
    return;
  }
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

// ---- pre-packed weights ----

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

void PackedWeight::multiply(MatRef x, Mat& y) const {
  if (kind_ == Kind::int8) fail("", "PackedWeight::multiply: an int8 weight takes quantised input (multiply_int8)");
  if (x.cols() != cols_)
    fail("", "PackedWeight: input has " + std::to_string(x.cols()) + " columns, weight expects " + std::to_string(cols_));
  const Impl& im = *impl_;
  y.resize(x.rows(), rows_);
  if (y.size() == 0) return;
  if (cols_ == 0) {
    y.setZero();
    if (im.bias) y.rowwise() += Eigen::Map<const RowVec>(static_cast<const float*>(im.bias.get_data_handle()), rows_);
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
    im.run(src, x.rows(), cols_, rows_, y.data());
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
