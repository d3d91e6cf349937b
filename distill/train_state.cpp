#include "distill/train_state.h"

#include <cstdio>
#include <fstream>
#include <vector>

#include "io/atomic_file.h"
#include "io/dtype.h"
#include "io/safetensors.h"
#include "model/error.h"

namespace moekit::distill {

namespace fs = std::filesystem;

namespace {

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(step));
  return buf;
}

void copy_into(Mat& dst, const io::Tensor& t, const std::string& name, const fs::path& file) {
  Mat m = io::tensor_to_mat(t, name);
  if (m.size() != dst.size()) fail(file, name + ": expected " + std::to_string(dst.size()) + " values, got " + std::to_string(m.size()));
  std::copy(m.data(), m.data() + m.size(), dst.data());
}

}  // namespace

void save_checkpoint(const fs::path& out, const ParamList& params, AdamW& adam, const TrainState& state, int keep) {
  const fs::path root = out / "checkpoints";
  fs::create_directories(root);
  const fs::path final_dir = root / step_name(state.step);
  const fs::path tmp = io::temp_sibling(final_dir);
  fs::create_directories(tmp);
  std::map<std::string, io::Tensor> weights, moments;
  for (size_t i = 0; i < params.size(); ++i) {
    weights[params[i]->name] = io::mat_to_tensor(params[i]->value, io::DType::F32, false);
    moments["m." + params[i]->name] = io::mat_to_tensor(adam.m()[i], io::DType::F32, false);
    moments["v." + params[i]->name] = io::mat_to_tensor(adam.v()[i], io::DType::F32, false);
  }
  io::write_safetensors(tmp / "params.safetensors", weights);
  io::write_safetensors(tmp / "optimizer.safetensors", moments);
  nlohmann::json j = {{"step", state.step},         {"epoch", state.epoch},         {"cursor", state.cursor},
                      {"best_metric", state.best_metric}, {"best_step", state.best_step}, {"adam_t", adam.steps_taken()},
                      {"options", state.options}};
  io::write_text_atomic(tmp / "state.json", j.dump(2) + "\n");
  io::write_text_atomic(tmp / "DONE", "");
  fs::remove_all(final_dir);
  fs::rename(tmp, final_dir);
  // Keep the newest `keep` complete checkpoints; stray temporaries of killed runs go too.
  std::vector<fs::path> found;
  for (const auto& e : fs::directory_iterator(root)) found.push_back(e.path());
  std::sort(found.begin(), found.end());
  int kept = 0;
  for (auto it = found.rbegin(); it != found.rend(); ++it) {
    const bool complete = it->filename().string().rfind("step-", 0) == 0 && fs::exists(*it / "DONE");
    if (complete && kept < keep) {
      ++kept;
      continue;
    }
    std::error_code ec;
    fs::remove_all(*it, ec);
  }
}

std::optional<fs::path> latest_checkpoint(const fs::path& out) {
  const fs::path root = out / "checkpoints";
  if (!fs::is_directory(root)) return std::nullopt;
  std::optional<fs::path> best;
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("step-", 0) != 0 || !fs::exists(e.path() / "DONE")) continue;
    if (!best || name > best->filename().string()) best = e.path();
  }
  return best;
}

TrainState load_checkpoint(const fs::path& dir, const ParamList& params, AdamW& adam) {
  const auto weights = io::read_safetensors(dir / "params.safetensors");
  const auto moments = io::read_safetensors(dir / "optimizer.safetensors");
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string& name = params[i]->name;
    auto w = weights.tensors.find(name);
    auto m = moments.tensors.find("m." + name);
    auto v = moments.tensors.find("v." + name);
    if (w == weights.tensors.end() || m == moments.tensors.end() || v == moments.tensors.end())
      fail(dir, "checkpoint lacks parameter " + name + " (was it written for another model?)");
    copy_into(params[i]->value, w->second, name, dir / "params.safetensors");
    copy_into(adam.m()[i], m->second, "m." + name, dir / "optimizer.safetensors");
    copy_into(adam.v()[i], v->second, "v." + name, dir / "optimizer.safetensors");
  }
  std::ifstream in(dir / "state.json");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
    TrainState s;
    s.step = j.at("step").get<int64_t>();
    s.epoch = j.at("epoch").get<int64_t>();
    s.cursor = j.at("cursor").get<int64_t>();
    s.best_metric = j.at("best_metric").get<double>();
    s.best_step = j.at("best_step").get<int64_t>();
    s.options = j.at("options");
    adam.set_steps_taken(j.at("adam_t").get<int64_t>());
    return s;
  } catch (const nlohmann::json::exception& e) {
    fail(dir / "state.json", std::string("malformed training state: ") + e.what());
  }
}

}  // namespace moekit::distill
