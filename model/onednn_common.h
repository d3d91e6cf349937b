// Internal to model/: what the oneDNN-backed files (matmul.cpp, packed_weight.cpp) share: the
// engine and per-thread stream, primitives that run on this thread's scratchpad, the kernel
// registry behind matmul_impls(), bf16 rounding loops and per-thread scratch buffers.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <dnnl.hpp>

#include "model/tensor.h"

namespace moekit::onednn {

using dnnl::memory;
using dt = memory::data_type;
using dims = memory::dims;

dnnl::engine& cpu_engine();
// CPU streams are cheap; one per thread, so products may run from several threads at once.
dnnl::stream& cpu_stream();

// Every primitive here takes its scratchpad from the thread that runs it (scratchpad_mode::user).
// In the library's own mode, Debian's oneDNN (built without DNNL_ENABLE_CONCURRENT_EXEC) shares
// one scratchpad between executions, and two threads running brgemm products at once (MoE
// experts on row chunks, AVX-512) overwrote each other's partial results.
dnnl::primitive_attr user_scratchpad();

// A primitive with the scratchpad it asks for.
struct Primitive {
  dnnl::matmul prim;
  memory::desc scratchpad;
  explicit Primitive(const dnnl::matmul::primitive_desc& pd) : prim(pd), scratchpad(pd.scratchpad_desc()) {}
};

// Runs dst = src * wei (+ bias) on this thread's stream and scratchpad, and waits.
void execute(const Primitive& p, const memory& src, const memory& wei, const memory& dst, const memory* bias = nullptr);

// oneDNN reports its failures as dnnl::error; the library's callers expect moekit::Error.
[[noreturn]] void rethrow(const dnnl::error& e, const std::string& what);

// Records the kernel of a kind of product for matmul_impls(). Where the caller gives row counts,
// the largest product seen names the kind: oneDNN picks other kernels for a classifier's single
// rows, which do not explain a bench row's speed.
void note_impl(const std::string& kind, const dnnl::matmul::primitive_desc& pd, int64_t rows = 0);

// "fp32 packed brg:avx512_core, ..." from note_impl's records (matmul_impls()).
std::string impls_text();

// Copies a strided row-major block [rows, cols] (row stride ld) contiguously, rounded to bf16:
// as bf16 bits, or as floats holding bf16 values (the emulation on CPUs without bf16 matmuls).
void convert_bf16(const float* src, Eigen::Index rows, Eigen::Index cols, Eigen::Index ld, uint16_t* dst);
void convert_bf16(const float* src, Eigen::Index rows, Eigen::Index cols, Eigen::Index ld, float* dst);

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

inline memory::desc desc2(const Dims2& shape, dt type, const Dims2& strides) {
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

// The operand rounded to bf16 into scratch `slot`: bf16 bits where oneDNN has bf16 matmuls, else
// floats holding bf16 values (model/matmul.h).
Operand bf16_operand(MatRef m, bool transposed, int slot);

}  // namespace moekit::onednn
