// moekit serve in-process: real client threads over 127.0.0.1 (httplib::Client), answers held
// against `moekit predict` on the same texts, every error answer, 429 when the queue is full,
// and the drain on stop(). Bounded: a fixed number of requests, client timeouts of seconds.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <future>
#include <thread>

#include <nlohmann/json.hpp>

#include "io/checkpoint.h"
#include "io/hf_tokenizer.h"
#include "model/rng.h"
#include "serve/request.h"
#include "serve/server.h"
#include "serve/token_spans.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using nlohmann::json;

namespace {

// The tiny MoE model (4 hash experts in both layers) in a directory, with a 40-token vocabulary.
std::filesystem::path serve_model_dir() {
  static const std::filesystem::path dir = [] {
    BertConfig c = test::tiny_config();
    MoeConfig moe;
    moe.n_experts = 4;
    moe.expert_size = 8;
    moe.layers = {0, 1};
    c.moe = moe;
    BertModel m(c);
    test::randomize(m, 17, 0.3);
    m.classifier.weight.value *= 10.0f;  // clear margins, so labels are stable under round-off
    std::vector<std::string> tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (int i = 0; tokens.size() < 40; ++i) tokens.push_back("w" + std::to_string(i));
    const io::Vocab vocab = io::Vocab::from_tokens(tokens);
    const auto d = test::scratch_dir("serve_model") / "m";
    io::save_model(d, m, &vocab, true);
    return d;
  }();
  return dir;
}

std::string random_text(Rng& rng, int words) {
  std::string s;
  for (int i = 0; i < words; ++i) s += (i ? " " : "") + std::string("w") + std::to_string(rng.below(40));
  return s;  // w35..w39 are not in the vocabulary: [UNK]
}

struct Running {
  serve::Server server;
  int port;
  std::thread thread;
  explicit Running(const serve::ServeOptions& o) : server(o), port(server.bind()), thread([this] { server.run(); }) {}
  ~Running() {
    server.stop();
    thread.join();
  }
};

serve::ServeOptions options() {
  serve::ServeOptions o;
  o.model = serve_model_dir().string();
  o.port = 0;
  o.log_level = "warn";
  return o;
}

httplib::Client client(int port) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(5, 0);
  c.set_read_timeout(20, 0);
  c.set_write_timeout(5, 0);
  return c;
}

// Logits of `moekit predict` for the texts (JSONL with text and optional text_pair).
std::vector<std::vector<float>> predict_logits(const std::vector<std::pair<std::string, std::string>>& texts) {
  const auto dir = test::unique_scratch_dir("serve_predict");
  {
    std::ofstream f(dir / "data.jsonl");
    for (const auto& [a, b] : texts) {
      json line{{"text", a}};
      if (!b.empty()) line["text_pair"] = b;
      f << line.dump() << "\n";
    }
  }
  const std::string cmd = std::string(MOEKIT_BINARY) + " --quiet predict --model " + serve_model_dir().string() +
                          " --data " + (dir / "data.jsonl").string() + " --out " + (dir / "out.jsonl").string() +
                          " 2>/dev/null";
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::vector<std::vector<float>> out;
  std::ifstream f(dir / "out.jsonl");
  for (std::string line; std::getline(f, line);) out.push_back(json::parse(line)["logits"].get<std::vector<float>>());
  REQUIRE(out.size() == texts.size());
  return out;
}

// The answer for one input matches softmax(logits): same order of labels, scores to round-off.
void check_scores(const json& answer, const std::vector<float>& logits, const std::vector<std::string>& labels) {
  REQUIRE(answer.is_array());
  REQUIRE(answer.size() == logits.size());
  double top = *std::max_element(logits.begin(), logits.end()), sum = 0;
  for (float l : logits) sum += std::exp(l - top);
  size_t best = static_cast<size_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  CHECK(answer[0]["label"] == labels[best]);
  for (const json& s : answer) {
    const size_t i = static_cast<size_t>(std::find(labels.begin(), labels.end(), s["label"].get<std::string>()) - labels.begin());
    REQUIRE(i < labels.size());
    CHECK(std::abs(s["score"].get<double>() - std::exp(logits[i] - top) / sum) <= 1e-5);
  }
  for (size_t k = 1; k < answer.size(); ++k) CHECK(answer[k - 1]["score"] >= answer[k]["score"]);
}

}  // namespace

TEST_CASE("serve: concurrent clients get exactly moekit predict's labels and probabilities", "[serve][e2e]") {
  Rng rng(5);
  std::vector<std::pair<std::string, std::string>> texts;
  for (int i = 0; i < 96; ++i)
    texts.emplace_back(random_text(rng, 1 + static_cast<int>(rng.below(14))),  // fits 24 tokens
                       i % 3 == 0 ? random_text(rng, 1 + static_cast<int>(rng.below(4))) : "");
  const auto expected = predict_logits(texts);
  auto o = options();
  o.max_batch_requests = 8;  // several scheduler cycles, mixed lengths in each
  Running r(o);
  const std::vector<std::string> labels = r.server.model().model->config.labels;
  constexpr int kClients = 8;
  // Catch2 assertions are not thread-safe: clients only collect (index, status, body).
  using Answer = std::tuple<size_t, int, json>;
  std::vector<std::future<std::vector<Answer>>> clients;
  for (int c = 0; c < kClients; ++c)
    clients.push_back(std::async(std::launch::async, [&, c] {
      httplib::Client http = client(r.port);
      // Client c sends texts c, c + 8, ...: the first half one by one, the rest as one batch.
      std::vector<size_t> mine;
      for (size_t i = static_cast<size_t>(c); i < texts.size(); i += kClients) mine.push_back(i);
      std::vector<Answer> answers;
      auto post = [&](const json& inputs) {
        auto res = http.Post("/predict", json{{"inputs", inputs}}.dump(), "application/json");
        return res ? std::make_pair(res->status, json::parse(res->body, nullptr, false)) : std::make_pair(-1, json());
      };
      const size_t half = mine.size() / 2;
      for (size_t k = 0; k < half; ++k) {
        const auto& [a, b] = texts[mine[k]];
        auto [status, body] = post(b.empty() ? json(a) : json::array({a, b}));
        answers.emplace_back(mine[k], status, body);
      }
      json batch = json::array();
      for (size_t k = half; k < mine.size(); ++k) {
        const auto& [a, b] = texts[mine[k]];
        batch.push_back(b.empty() ? json::array({a}) : json::array({a, b}));
      }
      auto [status, body] = post(batch);
      for (size_t k = half; k < mine.size(); ++k)
        answers.emplace_back(mine[k], status, status == 200 && body.is_array() && body.size() == batch.size()
                                                  ? body[k - half] : json());
      return answers;
    }));
  size_t answered = 0;
  for (auto& f : clients)
    for (const auto& [index, status, body] : f.get()) {
      INFO("text " << index << ": " << texts[index].first << " | " << texts[index].second);
      REQUIRE(status == 200);
      check_scores(body, expected[index], labels);
      ++answered;
    }
  CHECK(answered == texts.size());
  // The metrics saw every request and each expert's tokens.
  auto m = client(r.port).Get("/metrics");
  REQUIRE(m);
  CHECK(m->body.find("moekit_requests_total{route=\"/predict\",status=\"200\"}") != std::string::npos);
  CHECK(m->body.find("moekit_expert_tokens_total{layer=\"1\",expert=\"3\"}") != std::string::npos);
  CHECK(m->body.find("moekit_request_duration_seconds_count") != std::string::npos);
}

TEST_CASE("serve: raw_scores gives the logits, truncate cuts long inputs", "[serve]") {
  Running r(options());
  httplib::Client http = client(r.port);
  Rng rng(9);
  const std::string text = random_text(rng, 6), longer = random_text(rng, 40);
  const auto expected = predict_logits({{text, ""}, {longer, ""}});  // predict truncates to the model limit
  auto res = http.Post("/predict", json{{"inputs", text}, {"raw_scores", true}}.dump(), "application/json");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  const json raw = json::parse(res->body);
  const auto& labels = r.server.model().model->config.labels;
  for (const json& s : raw) {
    const size_t i = static_cast<size_t>(std::find(labels.begin(), labels.end(), s["label"]) - labels.begin());
    CHECK(std::abs(s["score"].get<double>() - expected[0][i]) <= 1e-5);
  }
  res = http.Post("/predict", json{{"inputs", longer}, {"truncate", true}}.dump(), "application/json");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  check_scores(json::parse(res->body), expected[1], labels);
}

TEST_CASE("serve: bad requests get TEI error answers, the server stays up", "[serve][corrupt]") {
  auto o = options();
  o.max_client_batch_size = 4;
  o.payload_limit = 4096;
  Running r(o);
  httplib::Client http = client(r.port);
  Rng rng(3);
  const std::string too_long = random_text(rng, 60);
  struct Case {
    std::string body;
    int status;
    std::string type, phrase;
  };
  const std::vector<Case> cases = {
      {"{\"inputs\": \"w1 w2\"", 422, "validation", "not valid JSON"},
      {"[\"w1\"]", 422, "validation", "JSON object"},
      {"{\"text\": \"w1\"}", 422, "validation", "missing field `inputs`"},
      {"{\"inputs\": 5}", 422, "validation", "`inputs` must be"},
      {"{\"inputs\": []}", 422, "validation", "empty"},
      {"{\"inputs\": [1, 2, 3]}", 422, "validation", "inputs[0]"},
      {"{\"inputs\": [[\"a\", \"b\", \"c\"]]}", 422, "validation", "inputs[0]"},
      {"{\"inputs\": [\"w1\", [\"w2\", 7]]}", 422, "validation", "inputs[1]"},
      {"{\"inputs\": \"w1\", \"truncate\": \"yes\"}", 422, "validation", "`truncate`"},
      {"{\"inputs\": \"w1\", \"raw_scores\": 1}", 422, "validation", "`raw_scores`"},
      {"{\"inputs\": \"\xff\xfe\"}", 422, "validation", "JSON"},
      {json{{"inputs", too_long}}.dump(), 413, "validation", "more than the maximum of 24"},
      {json{{"inputs", {"w1", "w2", "w3", "w4", "w5"}}}.dump(), 413, "validation", "batch size 5"},
      {json{{"inputs", std::string(5000, 'w')}}.dump(), 413, "validation", "too large"},
  };
  for (const Case& c : cases) {
    INFO(c.body.substr(0, 80));
    auto res = http.Post("/predict", c.body, "application/json");
    REQUIRE(res);
    CHECK(res->status == c.status);
    const json err = json::parse(res->body, nullptr, false);
    REQUIRE(err.is_object());
    CHECK(err["error_type"] == c.type);
    CHECK_THAT(err["error"].get<std::string>(), Catch::Contains(c.phrase));
  }
  auto res = http.Post("/tokenize", "{\"inputs\": 3}", "application/json");
  REQUIRE(res);
  CHECK(res->status == 422);
  res = http.Get("/nope");
  REQUIRE(res);
  CHECK(res->status == 404);
  CHECK(json::parse(res->body)["error_type"] == "validation");
  res = http.Get("/health");
  REQUIRE(res);
  CHECK(res->status == 200);
}

TEST_CASE("serve: a full queue answers 429 and the queued requests still finish", "[serve]") {
  auto o = options();
  o.max_concurrent_requests = 2;
  Running r(o);
  r.server.scheduler().set_paused(true);
  std::vector<std::future<int>> queued;
  for (int i = 0; i < 2; ++i)
    queued.push_back(std::async(std::launch::async, [&] {
      auto res = client(r.port).Post("/predict", "{\"inputs\": \"w1 w2 w3\"}", "application/json");
      return res ? res->status : -1;
    }));
  // Wait (bounded) until both sit in the queue; the outcome below does not depend on timing.
  for (int i = 0; i < 2000 && r.server.scheduler().depth() < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE(r.server.scheduler().depth() == 2);
  httplib::Client http = client(r.port);
  for (int i = 0; i < 5; ++i) {
    auto res = http.Post("/predict", "{\"inputs\": \"w4\"}", "application/json");
    REQUIRE(res);
    CHECK(res->status == 429);
    CHECK(json::parse(res->body)["error_type"] == "overloaded");
  }
  auto health = http.Get("/health");
  REQUIRE(health);
  CHECK(health->status == 200);
  r.server.scheduler().set_paused(false);
  for (auto& f : queued) CHECK(f.get() == 200);
  auto res = http.Post("/predict", "{\"inputs\": \"w4\"}", "application/json");
  REQUIRE(res);
  CHECK(res->status == 200);
  auto m = http.Get("/metrics");
  REQUIRE(m);
  CHECK(m->body.find("moekit_requests_total{route=\"/predict\",status=\"429\"} 5") != std::string::npos);
}

TEST_CASE("serve: stop() refuses new connections and finishes every queued request", "[serve]") {
  auto o = options();
  auto server = std::make_unique<serve::Server>(o);
  const int port = server->bind();
  std::thread run([&] { server->run(); });
  server->scheduler().set_paused(true);
  std::vector<std::future<int>> queued;
  for (int i = 0; i < 3; ++i)
    queued.push_back(std::async(std::launch::async, [&] {
      auto res = client(port).Post("/predict", "{\"inputs\": [\"w1 w2\", \"w3\"]}", "application/json");
      return res ? res->status : -1;
    }));
  for (int i = 0; i < 2000 && server->scheduler().depth() < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE(server->scheduler().depth() == 3);
  server->stop();  // what SIGTERM does
  run.join();      // returns only after the queue is done
  for (auto& f : queued) CHECK(f.get() == 200);
  CHECK(server->scheduler().depth() == 0);
  httplib::Client late = client(port);
  late.set_connection_timeout(1, 0);
  CHECK_FALSE(late.Get("/health"));
}

TEST_CASE("serve: /info, /tokenize and /health describe the model", "[serve]") {
  Running r(options());
  httplib::Client http = client(r.port);
  auto res = http.Get("/info");
  REQUIRE(res);
  const json info = json::parse(res->body);
  CHECK(info["max_input_length"] == 24);
  CHECK(info["model_type"]["classifier"]["id2label"]["1"] == "b");
  CHECK(info["moe"]["experts"] == 4);
  CHECK(info["model_dtype"].contains("F32"));
  res = http.Post("/tokenize", "{\"inputs\": [\"w3 w39\", \"w1\"]}", "application/json");
  REQUIRE(res);
  const json tok = json::parse(res->body);
  REQUIRE(tok.size() == 2);
  REQUIRE(tok[0].size() == 4);
  CHECK(tok[0][0]["text"] == "[CLS]");
  CHECK(tok[0][0]["special"] == true);
  CHECK(tok[0][1]["id"] == 8);  // w3
  CHECK(tok[0][2]["id"] == 1);         // [UNK]
  CHECK(tok[0][2]["text"] == "w39");  // a text token's text is its slice of the input, as TEI gives it
  CHECK(tok[0][3]["text"] == "[SEP]");
  res = http.Post("/tokenize", "{\"inputs\": \"w1\", \"add_special_tokens\": false}", "application/json");
  REQUIRE(res);
  CHECK(json::parse(res->body)[0].size() == 1);
}

TEST_CASE("serve: /tokenize gives TEI's start/stop, byte offsets whose slice of the input is the token's text",
          "[serve]") {
  Running r(options());
  httplib::Client http = client(r.port);
  // Upper case, a tab, two spaces, an accented unknown word (2-byte \u00e9) and punctuation.
  const std::string input = "  W3\tw39  \u00e9 w1,";
  auto res = http.Post("/tokenize", json{{"inputs", input}}.dump(), "application/json");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  const json tok = json::parse(res->body)[0];
  struct Want {
    std::string text;
    size_t start, stop;
  };
  const std::vector<Want> want{{"W3", 2, 4}, {"w39", 5, 8}, {"\u00e9", 10, 12}, {"w1", 13, 15}, {",", 15, 16}};
  REQUIRE(tok.size() == want.size() + 2);
  for (const size_t k : {size_t{0}, tok.size() - 1}) {  // [CLS], [SEP]: no place in the input
    CHECK(tok[k]["special"] == true);
    CHECK(tok[k]["start"].is_null());
    CHECK(tok[k]["stop"].is_null());
  }
  for (size_t k = 0; k < want.size(); ++k) {
    const json& t = tok[k + 1];
    INFO("token " << k + 1 << ": " << t.dump());
    CHECK(t["special"] == false);
    REQUIRE(t["start"].is_number_unsigned());
    const size_t start = t["start"], stop = t["stop"];
    CHECK(start == want[k].start);
    CHECK(stop == want[k].stop);
    CHECK(t["text"] == want[k].text);
    CHECK(input.substr(start, stop - start) == t["text"].get<std::string>());
  }
  res = http.Post("/tokenize", json{{"inputs", input}, {"add_special_tokens", false}}.dump(), "application/json");
  REQUIRE(res);
  const json plain = json::parse(res->body)[0];
  REQUIRE(plain.size() == want.size());
  CHECK(plain[0]["start"] == 2);
  CHECK(plain[4]["stop"] == 16);
}

TEST_CASE("serve: token_spans marks only the post-processor's tokens special, as TEI's special_tokens_mask does",
          "[serve]") {
  const auto tok = io::HfTokenizer::from_json_file(std::filesystem::path(MOEKIT_TEST_DATA) / "tokenizers" / "wordpiece" /
                                                   "tokenizer.json");
  const std::string input = "hello [MASK] x";
  const json t = serve::token_spans(tok->encode(input, nullptr, 64), input);
  REQUIRE(t.size() == 5);  // [CLS] hello [MASK] x [SEP]; the Rust library's mask is 1 0 0 0 1
  CHECK(t[0]["special"] == true);
  CHECK(t[0]["start"].is_null());
  CHECK(t[2]["special"] == false);
  CHECK(t[2]["text"] == "[MASK]");
  CHECK(t[2]["start"] == 6);
  CHECK(t[2]["stop"] == 12);
  CHECK(t[4]["special"] == true);
}

TEST_CASE("serve: label_scores sorts every label by softmax score", "[serve]") {
  RowVec logits(3);
  logits << 0.5f, 2.0f, -1.0f;
  const json s = serve::label_scores(logits, {"x", "y", "z"}, false);
  REQUIRE(s.size() == 3);
  CHECK(s[0]["label"] == "y");
  CHECK(s[2]["label"] == "z");
  const double sum = s[0]["score"].get<double>() + s[1]["score"].get<double>() + s[2]["score"].get<double>();
  CHECK(std::abs(sum - 1.0) < 1e-12);
  CHECK(std::abs(s[0]["score"].get<double>() - 1.0 / (1.0 + std::exp(-1.5) + std::exp(-3.0))) < 1e-9);
}

TEST_CASE("serve: a second server on a port in use fails instead of sharing its connections", "[serve]") {
  Running first(options());
  serve::ServeOptions o = options();
  o.port = first.port;
  serve::Server second(o);
  CHECK_THROWS_WITH(second.bind(), Catch::Contains("address in use"));
  CHECK(client(first.port).Get("/health")->status == 200);
}
