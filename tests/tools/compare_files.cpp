// Test helper for the e2e scripts (no Python in the tests): compares two weight files or two
// importance files within a relative tolerance, printing the largest differences.
//   compare_files safetensors A B REL   every tensor: max|a - b| <= REL * max|a| (same names, shapes)
//   compare_files importance A B REL    every layer:  the same, and the same example count
// Exit 0 within tolerance (prints "identical" when bit-equal), 1 otherwise, 2 on bad usage.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "compress/importance.h"
#include "io/dtype.h"
#include "io/safetensors.h"

namespace {

struct Worst {
  double rel = 0;
  std::string name;
  bool identical = true;
};

template <class A, class B>
void compare(const std::string& name, const A& a, const B& b, size_t n, Worst& worst) {
  double amax = 0, dmax = 0;
  for (size_t i = 0; i < n; ++i) {
    amax = std::max(amax, std::abs(static_cast<double>(a[i])));
    dmax = std::max(dmax, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
    if (a[i] != b[i]) worst.identical = false;
  }
  const double rel = amax > 0 ? dmax / amax : dmax;
  if (rel >= worst.rel) worst = {rel, name, worst.identical};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: compare_files safetensors|importance A B REL\n");
    return 2;
  }
  const std::string kind = argv[1];
  const double tolerance = std::stod(argv[4]);
  Worst worst;
  try {
    if (kind == "safetensors") {
      const auto a = moekit::io::read_safetensors(argv[2]), b = moekit::io::read_safetensors(argv[3]);
      if (a.tensors.size() != b.tensors.size()) throw std::runtime_error("different tensor counts");
      for (const auto& [name, t] : a.tensors) {
        const auto it = b.tensors.find(name);
        if (it == b.tensors.end() || it->second.shape != t.shape) throw std::runtime_error(name + ": missing or misshapen");
        const moekit::Mat x = moekit::io::tensor_to_mat(t, name), y = moekit::io::tensor_to_mat(it->second, name);
        compare(name, x.data(), y.data(), static_cast<size_t>(x.size()), worst);
      }
    } else if (kind == "importance") {
      const auto a = moekit::compress::read_importance(argv[2]), b = moekit::compress::read_importance(argv[3]);
      if (a.examples != b.examples || a.layers.size() != b.layers.size())
        throw std::runtime_error("different example or layer counts");
      for (size_t l = 0; l < a.layers.size(); ++l) {
        if (a.layers[l].size() != b.layers[l].size()) throw std::runtime_error("layer sizes differ");
        compare("layer_" + std::to_string(l), a.layers[l], b.layers[l], a.layers[l].size(), worst);
      }
    } else {
      std::fprintf(stderr, "compare_files: unknown kind %s\n", kind.c_str());
      return 2;
    }
  } catch (const std::exception& e) {
    std::printf("differ: %s\n", e.what());
    return 1;
  }
  std::printf("%s: largest relative difference %.3g (%s)\n", worst.identical ? "identical" : "close",
              worst.rel, worst.name.c_str());
  return worst.rel <= tolerance ? 0 : 1;
}
