#include "model/onednn_common.h"

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "model/error.h"
#include "model/matmul.h"
#include "model/target_clones.h"

namespace moekit::onednn {

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& cpu_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

namespace {

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

std::mutex impl_mutex;
struct NotedImpl {
  std::string name;  // "gemm:jit"
  int64_t rows = -1;
};
std::map<std::string, NotedImpl> impl_by_kind;  // "fp32 packed" -> the kernel of its largest product

// float bits rounded to the nearest bf16 (ties to even), low half zero; a NaN stays a quiet NaN.
// Branch-free, so the conversion loops below vectorise.
inline uint32_t bf16_rounded_bits(uint32_t u) {
  const int32_t magnitude = static_cast<int32_t>(u & 0x7fffffffu);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  const uint32_t quiet_nan = (u | 0x00400000u) & 0xffff0000u;
  return magnitude > 0x7f800000 ? quiet_nan : rounded;
}

}  // namespace

// Runs dst = src * wei (+ bias) on this thread's stream and scratchpad, and waits. The C call takes
// a fixed array of arguments (the C++ one builds an unordered_map per call).
void execute(const Primitive& p, const memory& src, const memory& wei, const memory& dst, const memory* bias) {
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

[[noreturn]] void rethrow(const dnnl::error& e, const std::string& what) {
  fail("", "oneDNN " + what + ": " + e.what());
}

void note_impl(const std::string& kind, const dnnl::matmul::primitive_desc& pd, int64_t rows) {
  std::lock_guard<std::mutex> lock(impl_mutex);
  NotedImpl& n = impl_by_kind[kind];
  if (rows >= n.rows) n = {pd.impl_info_str(), rows};
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

std::string impls_text() {
  std::lock_guard<std::mutex> lock(impl_mutex);
  std::string out;
  for (const auto& [kind, impl] : impl_by_kind) out += (out.empty() ? "" : ", ") + kind + " " + impl.name;
  return out;
}

}  // namespace moekit::onednn
