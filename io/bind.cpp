#include "io/bind.h"

#include <algorithm>
#include <set>

#include "model/error.h"

namespace moekit::io {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string replace_suffix(const std::string& s, const std::string& from, const std::string& to) {
  return s.substr(0, s.size() - from.size()) + to;
}

// Names under which a parameter may be stored, in order of preference.
std::vector<std::string> candidates(const std::string& name, const std::string& prefix) {
  std::vector<std::string> out{name};
  if (name.find("LayerNorm.") != std::string::npos) {
    if (ends_with(name, ".weight")) out.push_back(replace_suffix(name, ".weight", ".gamma"));
    if (ends_with(name, ".bias")) out.push_back(replace_suffix(name, ".bias", ".beta"));
  }
  if (name.rfind(prefix, 0) == 0) {
    const size_t n = out.size();
    for (size_t i = 0; i < n; ++i) out.push_back(out[i].substr(prefix.size()));
  }
  return out;
}

// Tensors HF checkpoints carry that inference never uses: not worth a warning. (MLM heads:
// BERT's cls.*, RoBERTa's lm_head.*, DistilBERT's vocab_transform/vocab_layer_norm/vocab_projector.)
bool known_unused(const std::string& name) {
  return ends_with(name, "position_ids") || name.rfind("cls.", 0) == 0 || name.rfind("lm_head.", 0) == 0 ||
         name.rfind("vocab_", 0) == 0 || name.find("pooler.") != std::string::npos;
}

// Binds one integer tensor; returns the problem, or "" when bound.
std::string bind_index(const IndexParam& ip, const std::map<std::string, Tensor>& tensors, BindResult& result) {
  auto it = tensors.find(ip.name);
  if (it == tensors.end()) return "missing tensor " + ip.name;
  const Tensor& t = it->second;
  const std::vector<int64_t> expected{static_cast<int64_t>(ip.values->size())};
  if (t.shape != expected)
    return ip.name + ": expected shape " + shape_string(expected) + ", got " + shape_string(t.shape);
  if (t.dtype != DType::I32 && t.dtype != DType::I64)
    return ip.name + ": expected an integer dtype (I32), got " + dtype_name(t.dtype);
  std::vector<int32_t> values;
  try {
    values = tensor_to_int32(t, ip.name);
  } catch (const Error& e) {
    return e.what();
  }
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i] < ip.lo || values[i] >= ip.hi)
      return ip.name + ": value " + std::to_string(values[i]) + " at index " + std::to_string(i) +
             " is outside [" + std::to_string(ip.lo) + ", " + std::to_string(ip.hi) + ")";
  *ip.values = std::move(values);
  ++result.dtype_counts[dtype_name(t.dtype)];
  return "";
}

}  // namespace

BindResult bind_params(const ParamList& params, const std::map<std::string, Tensor>& tensors,
                       const std::filesystem::path& path, const std::string& prefix,
                       const std::vector<std::string>& head_names, const std::vector<IndexParam>& indices) {
  BindResult result;
  std::vector<std::string> problems;
  std::set<std::string> used;
  for (Param* p : params) {
    const Tensor* found = nullptr;
    std::string found_name;
    for (const std::string& c : candidates(p->name, prefix)) {
      auto it = tensors.find(c);
      if (it != tensors.end()) {
        found = &it->second;
        found_name = c;
        break;
      }
    }
    if (!found) {
      if (std::find(head_names.begin(), head_names.end(), p->name) != head_names.end())
        result.missing_head.push_back(p->name);
      else
        problems.push_back("missing tensor " + p->name);
      continue;
    }
    used.insert(found_name);
    const bool vector_param = p->vector;
    const std::vector<int64_t> expected =
        vector_param ? std::vector<int64_t>{p->value.cols()} : std::vector<int64_t>{p->value.rows(), p->value.cols()};
    if (found->shape != expected) {
      problems.push_back(found_name + ": expected shape " + shape_string(expected) + ", got " +
                         shape_string(found->shape));
      continue;
    }
    if (!is_float(found->dtype)) {
      problems.push_back(found_name + ": expected a floating-point dtype, got " + dtype_name(found->dtype));
      continue;
    }
    p->value = tensor_to_mat(*found, found_name);
    if (vector_param && p->value.rows() != 1) p->value.resize(1, p->value.size());
    ++result.dtype_counts[dtype_name(found->dtype)];
  }
  for (const IndexParam& ip : indices) {
    std::string problem = bind_index(ip, tensors, result);
    if (problem.empty())
      used.insert(ip.name);
    else
      problems.push_back(std::move(problem));
  }
  if (!problems.empty()) {
    std::string msg = std::to_string(problems.size()) + " problem(s) binding the weights: ";
    for (size_t i = 0; i < problems.size() && i < 8; ++i) msg += (i ? "; " : "") + problems[i];
    if (problems.size() > 8) msg += "; ... (" + std::to_string(problems.size() - 8) + " more)";
    fail(path, msg);
  }
  int ignored = 0;
  std::string examples;
  for (const auto& [name, t] : tensors) {
    if (used.count(name) || known_unused(name)) continue;
    if (++ignored <= 3) examples += (examples.empty() ? "" : ", ") + name;
  }
  if (ignored > 0)
    result.warnings.push_back(path.string() + ": ignored " + std::to_string(ignored) +
                              " tensor(s) the model does not use (" + examples + (ignored > 3 ? ", ..." : "") + ")");
  return result;
}

}  // namespace moekit::io
