#include "serve/request.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "serve/request_error.h"

namespace moekit::serve {

using nlohmann::json;

std::string error_body(const std::string& message, const std::string& type) {
  return json{{"error", message}, {"error_type", type}}.dump();
}

namespace {

[[noreturn]] void shape_error(const std::string& message) { throw RequestError(422, "validation", message); }

json parse_object(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) shape_error("request body is not valid JSON");
  if (!j.is_object()) shape_error("request body must be a JSON object");
  if (!j.contains("inputs")) shape_error("missing field `inputs`");
  return j;
}

bool flag(const json& j, const char* key, bool fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean()) shape_error(std::string("`") + key + "` must be true or false");
  return j[key].get<bool>();
}

bool all_strings(const json& a) {
  return std::all_of(a.begin(), a.end(), [](const json& x) { return x.is_string(); });
}

Sequence sequence(const json& item, size_t index) {
  if (item.is_string()) return {item.get<std::string>(), std::nullopt};
  if (item.is_array() && all_strings(item) && (item.size() == 1 || item.size() == 2))
    return {item[0].get<std::string>(),
            item.size() == 2 ? std::optional<std::string>(item[1].get<std::string>()) : std::nullopt};
  shape_error("`inputs[" + std::to_string(index) + "]` must be a string, [text] or [text, pair]");
}

void check_batch(size_t n, int max_client_batch) {
  if (n == 0) shape_error("`inputs` is empty");
  if (n > static_cast<size_t>(max_client_batch))
    throw RequestError(413, "validation", "batch size " + std::to_string(n) + " > maximum allowed batch size " +
                                              std::to_string(max_client_batch));
}

}  // namespace

PredictRequest parse_predict(const std::string& body, int max_client_batch) {
  const json j = parse_object(body);
  PredictRequest r;
  r.truncate = flag(j, "truncate", false);
  r.raw_scores = flag(j, "raw_scores", false);
  const json& in = j["inputs"];
  if (in.is_string() || (in.is_array() && in.size() == 2 && all_strings(in))) {
    r.inputs.push_back(sequence(in, 0));
    return r;
  }
  if (!in.is_array()) shape_error("`inputs` must be a string, [text, pair] or a list of those");
  check_batch(in.size(), max_client_batch);
  r.batched = true;
  for (size_t i = 0; i < in.size(); ++i) r.inputs.push_back(sequence(in[i], i));
  return r;
}

QaRequest parse_qa(const std::string& body, int max_client_batch) {
  const json j = parse_object(body);
  const json& in = j["inputs"];
  auto item = [](const json& x, const std::string& where) {
    if (!x.is_object() || !x.contains("question") || !x.contains("context") || !x["question"].is_string() ||
        !x["context"].is_string())
      shape_error(where + " must be {\"question\": \"...\", \"context\": \"...\"}");
    return std::make_pair(x["question"].get<std::string>(), x["context"].get<std::string>());
  };
  QaRequest r;
  if (in.is_object()) {
    r.inputs.push_back(item(in, "`inputs`"));
    return r;
  }
  if (!in.is_array()) shape_error("`inputs` must be {\"question\", \"context\"} or a list of those");
  check_batch(in.size(), max_client_batch);
  r.batched = true;
  for (size_t i = 0; i < in.size(); ++i) r.inputs.push_back(item(in[i], "`inputs[" + std::to_string(i) + "]`"));
  return r;
}

TokenizeRequest parse_tokenize(const std::string& body, int max_client_batch) {
  const json j = parse_object(body);
  TokenizeRequest r;
  r.add_special_tokens = flag(j, "add_special_tokens", true);
  const json& in = j["inputs"];
  if (in.is_string()) {
    r.inputs.push_back(in.get<std::string>());
    return r;
  }
  if (!in.is_array() || !all_strings(in)) shape_error("`inputs` must be a string or a list of strings");
  check_batch(in.size(), max_client_batch);
  for (const json& s : in) r.inputs.push_back(s.get<std::string>());
  return r;
}

json label_scores(const Eigen::Ref<const RowVec>& logits, const std::vector<std::string>& labels, bool raw_scores,
                  Task task) {
  const auto n = static_cast<size_t>(logits.cols());
  std::vector<double> score(n);
  const double top = logits.maxCoeff();
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const double z = logits(static_cast<Eigen::Index>(i));
    score[i] = raw_scores || task == Task::regression ? z
               : task == Task::multi_label           ? 1 / (1 + std::exp(-z))
                                                     : std::exp(z - top);
    sum += score[i];
  }
  if (!raw_scores && task == Task::single_label)
    for (double& s : score) s /= sum;
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] > score[b]; });
  json out = json::array();
  for (size_t i : order) out.push_back({{"label", labels[i]}, {"score", score[i]}});
  return out;
}

}  // namespace moekit::serve
