#include "serve/server.h"

#include <httplib.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <csignal>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "io/batching.h"
#include "distill/qa_metrics.h"
#include "io/hf_config.h"
#include "io/qa_dataset.h"
#include "io/token_dataset.h"
#include "model/error.h"
#include "serve/request.h"
#include "serve/request_error.h"
#include "serve/token_answer.h"
#include "serve/token_spans.h"

namespace moekit::serve {

using nlohmann::json;

namespace {

constexpr const char* kJson = "application/json";
// Start of the request this HTTP thread is serving (httplib runs a request start to end on one thread).
thread_local std::chrono::steady_clock::time_point request_start;

int level_rank(const std::string& level) {
  if (level == "error") return 0;
  if (level == "warn") return 1;
  if (level == "info") return 2;
  if (level == "debug") return 3;
  fail("", "--log-level must be error, warn, info or debug, got \"" + level + "\"");
}

void send_error(httplib::Response& res, int status, const std::string& type, const std::string& message) {
  res.status = status;
  res.set_content(error_body(message, type), kJson);
}

// Runs a route, turning its failures into TEI error answers: never an escaped exception.
template <class F>
httplib::Server::Handler guarded(F route) {
  return [route](const httplib::Request& req, httplib::Response& res) {
    try {
      route(req, res);
    } catch (const RequestError& e) {
      send_error(res, e.status(), e.type(), e.what());
    } catch (const std::bad_alloc&) {
      send_error(res, 500, "backend", "out of memory");
    } catch (const std::exception& e) {
      send_error(res, 500, "backend", e.what());
    }
  };
}

}  // namespace

Server::Server(const ServeOptions& options) : options_(options) {
  log_rank_ = level_rank(options.log_level);
  check(options.max_batch_tokens > 0, "", "--max-batch-tokens must be positive");
  check(options.max_batch_requests > 0, "", "--max-batch-requests must be positive");
  check(options.max_batch_wait_us >= 0, "", "--max-batch-wait-us must not be negative");
  check(options.max_concurrent_requests > 0, "", "--max-concurrent-requests must be positive");
  check(options.max_client_batch_size > 0, "", "--max-client-batch-size must be positive");
  check(options.http_threads > 0, "", "--http-threads must be positive");
  loaded_ = io::load_model(options.model, 0, io::LoadFor::inference);
  if (log_rank_ >= 1)
    for (const auto& w : loaded_.warnings) std::cerr << "moekit serve: warning: " << w << "\n";
  tokenizer_ = io::load_tokenizer(loaded_);
  const BertConfig& c = loaded_.model->config;
  const int64_t limit = c.max_seq_len();
  max_len_ = options.max_input_length == 0 ? static_cast<int>(std::min<int64_t>(limit, 512)) : options.max_input_length;
  if (max_len_ < 3 || max_len_ > limit)
    fail("", "--max-input-length " + std::to_string(max_len_) + " must be in 3.." + std::to_string(limit) +
                 " (the model's position table)");
  if (c.num_labels() == 0) fail(options.model, "the model has no labels to predict");
  scheduler_ = std::make_unique<Scheduler>(
      *loaded_.model,
      SchedulerLimits{options.max_batch_tokens, options.max_batch_requests,
                      static_cast<size_t>(options.max_concurrent_requests),
                      std::chrono::microseconds(options.max_batch_wait_us)},
      metrics_);

  http_ = std::make_unique<httplib::Server>();
  const int threads = options.http_threads;
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  // Without TCP_NODELAY, Nagle holds a response's body until the client ACKs its headers, which a
  // client's delayed ACK postpones by ~40 ms: measured p50 47 ms at one client, 17x bench's latency.
  http_->set_tcp_nodelay(true);
  // httplib's default sets SO_REUSEPORT, with which a second server on a busy port binds too and
  // silently takes half its connections; SO_REUSEADDR alone still allows a restart at once. The
  // socket is kept to deepen httplib's listen backlog of 5 in bind().
  http_->set_socket_options([this](socket_t sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listen_socket_ = sock;
  });
  http_->set_payload_max_length(options.payload_limit);
  http_->set_read_timeout(options.read_timeout, 0);
  http_->set_write_timeout(options.write_timeout, 0);
  http_->set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
    request_start = std::chrono::steady_clock::now();
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // httplib's own refusals (404, 413 body too large, 400 unreadable request) carry no body.
  http_->set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const std::string what = res.status == 404   ? "no such route"
                             : res.status == 413 ? "request body too large (--payload-limit)"
                                                 : "bad request";
    send_error(res, res.status, "validation", what);
    return httplib::Server::HandlerResponse::Handled;
  }));
  http_->set_logger([this](const httplib::Request& req, const httplib::Response& res) { log(req, res); });
  http_->Post("/predict", guarded([this](const auto& req, auto& res) { predict(req, res); }));
  http_->Post("/predict_tokens", guarded([this](const auto& req, auto& res) {
    if (loaded_.model->config.task != Task::token_classification)
      throw RequestError(422, "validation", "/predict_tokens needs a token-classification model; this one is " +
                                                std::string(task_name(loaded_.model->config.task)) + " (use /predict)");
    predict(req, res);
  }));
  http_->Post("/tokenize", guarded([this](const auto& req, auto& res) { tokenize(req, res); }));
  http_->Get("/health", guarded([this](const auto&, auto& res) {
    if (stopping_) throw RequestError(503, "unhealthy", "the server is shutting down");
    res.set_content("{}", kJson);
  }));
  http_->Get("/info", guarded([this](const auto&, auto& res) { res.set_content(info_json(), kJson); }));
  http_->Get("/metrics", guarded([this](const auto&, auto& res) {
    res.set_content(metrics_.render(scheduler_->depth()), "text/plain; version=0.0.4");
  }));
}

Server::~Server() {
  stop();
  if (scheduler_) scheduler_->stop();
}

int Server::bind() {
  const int port = options_.port == 0 ? http_->bind_to_any_port(options_.host)
                                      : (http_->bind_to_port(options_.host, options_.port) ? options_.port : -1);
  if (port <= 0)
    fail("", "cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
                 " (address in use or not available)");
  // A backlog of 5 drops the SYNs of clients that connect together (32 at once: some waited the
  // 1 s SYN retry); listen() again on a listening socket only changes its backlog.
  if (listen_socket_ >= 0) ::listen(listen_socket_, kListenBacklog);
  return port;
}

void Server::run() {
  if (!stopping_) http_->listen_after_bind();
  scheduler_->stop();  // the HTTP threads are done: nothing more can be queued
}

void Server::stop() {
  stopping_ = true;
  if (scheduler_) scheduler_->set_paused(false);  // queued requests must run for the drain to end
  if (http_) http_->stop();
}

io::EncodedExample Server::encode(const std::string& text, const std::string* pair, bool truncate, size_t index) const {
  io::Encoding enc;
  try {
    enc = tokenizer_->encode(text, pair, INT_MAX / 2);
    if (enc.ids.size() > static_cast<size_t>(max_len_)) {
      if (!truncate)
        throw RequestError(413, "validation",
                           "input " + std::to_string(index) + " has " + std::to_string(enc.ids.size()) +
                               " tokens, more than the maximum of " + std::to_string(max_len_) +
                               " (send \"truncate\": true to cut it)");
      enc = tokenizer_->encode(text, pair, max_len_);
    }
  } catch (const moekit::Error& e) {
    throw RequestError(422, "tokenizer", "input " + std::to_string(index) + ": " + e.what());
  }
  io::EncodedExample ex;
  ex.ids = std::move(enc.ids);
  ex.type_ids = std::move(enc.type_ids);
  return ex;
}

io::EncodedExample Server::encode_words(const std::vector<io::WordSpan>& words, bool truncate, size_t index) const {
  io::Example example;
  for (const io::WordSpan& w : words) example.words.push_back(w.text);
  try {
    std::vector<io::EncodedExample> enc = io::encode_examples(*tokenizer_, {example}, INT_MAX / 2);
    if (enc[0].ids.size() > static_cast<size_t>(max_len_)) {
      if (!truncate)
        throw RequestError(413, "validation",
                           "input " + std::to_string(index) + " has " + std::to_string(enc[0].ids.size()) +
                               " tokens, more than the maximum of " + std::to_string(max_len_) +
                               " (send \"truncate\": true to tag only the words that fit)");
      enc = io::encode_examples(*tokenizer_, {example}, max_len_);
    }
    return std::move(enc[0]);
  } catch (const moekit::Error& e) {
    throw RequestError(422, "tokenizer", "input " + std::to_string(index) + ": " + e.what());
  }
}

// Token classification: each input is one text, split at whitespace into the words tagged; a list
// of two strings is two texts (TEI reads it as a pair, which a tagger has no use for).
void Server::predict_tokens(PredictRequest p, httplib::Response& res) {
  if (!p.batched && p.inputs.size() == 1 && p.inputs[0].pair) {  // ["a", "b"]: two texts, pairs mean nothing here
    p.inputs = {{p.inputs[0].text, std::nullopt}, {*p.inputs[0].pair, std::nullopt}};
    p.batched = true;
  }
  std::vector<std::vector<io::WordSpan>> words;
  std::vector<io::EncodedExample> inputs;
  for (size_t i = 0; i < p.inputs.size(); ++i) {
    if (p.inputs[i].pair)
      throw RequestError(422, "validation", "input " + std::to_string(i) +
                                                ": a token-classification model tags one text, not a pair");
    words.push_back(io::split_words(p.inputs[i].text));
    inputs.push_back(encode_words(words.back(), p.truncate, i));
  }
  std::vector<size_t> lengths;
  for (const auto& e : inputs) lengths.push_back(e.ids.size());
  const Mat logits = scheduler_->submit(inputs).get();
  json out = json::array();
  Eigen::Index row = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto n = static_cast<Eigen::Index>(lengths[i]);
    out.push_back(token_answer(loaded_.model->config, p.inputs[i].text, words[i], inputs[i].word_starts,
                               logits.middleRows(row, n)));
    row += n;
  }
  res.set_content((p.batched ? out : out[0]).dump(), kJson);
}

// Question answering: each {question, context} becomes run_qa's windows (io/qa_features.h); the
// answer is the best span over them, {"score", "start", "end", "answer"} (code points).
void Server::predict_answers(const httplib::Request& req, httplib::Response& res) {
  const QaRequest q = parse_qa(req.body, options_.max_client_batch_size);
  std::vector<io::Example> questions;
  for (const auto& [question, context] : q.inputs) {
    io::Example e;
    e.qa = true;
    e.has_pair = true;
    e.text = question;
    e.text_pair = context;
    questions.push_back(std::move(e));
  }
  std::vector<io::EncodedExample> features;
  try {
    features = io::encode_examples(*tokenizer_, questions, max_len_);
  } catch (const moekit::Error& e) {
    throw RequestError(422, "tokenizer", e.what());
  }
  const Mat logits = scheduler_->submit(features).get();
  json out = json::array();
  for (const auto& a : distill::best_answers(logits, features, distill::qa_decode_options(loaded_.model->config))) {
    const std::string& context = a.question->context;
    out.push_back({{"score", a.score},
                   {"start", io::code_points_before(context, a.begin)},
                   {"end", io::code_points_before(context, a.end)},
                   {"answer", a.text}});
  }
  res.set_content((q.batched ? out : out[0]).dump(), kJson);
}

void Server::predict(const httplib::Request& req, httplib::Response& res) {
  if (stopping_) throw RequestError(503, "unhealthy", "the server is shutting down");
  if (loaded_.model->config.task == Task::question_answering) return predict_answers(req, res);
  const PredictRequest p = parse_predict(req.body, options_.max_client_batch_size);
  if (loaded_.model->config.task == Task::token_classification) return predict_tokens(p, res);
  std::vector<io::EncodedExample> inputs;
  for (size_t i = 0; i < p.inputs.size(); ++i)
    inputs.push_back(encode(p.inputs[i].text, p.inputs[i].pair ? &*p.inputs[i].pair : nullptr, p.truncate, i));
  const Mat logits = scheduler_->submit(std::move(inputs)).get();
  const auto& labels = loaded_.model->config.labels;
  json out = json::array();
  for (Eigen::Index i = 0; i < logits.rows(); ++i) out.push_back(label_scores(logits.row(i), labels, p.raw_scores, loaded_.model->config.task));
  res.set_content((p.batched ? out : out[0]).dump(), kJson);
}

void Server::tokenize(const httplib::Request& req, httplib::Response& res) {
  const TokenizeRequest t = parse_tokenize(req.body, options_.max_client_batch_size);
  json out = json::array();
  for (size_t i = 0; i < t.inputs.size(); ++i) {
    io::Encoding enc;
    try {
      enc = t.add_special_tokens ? tokenizer_->encode(t.inputs[i], nullptr, INT_MAX / 2)
                                 : tokenizer_->encode_plain(t.inputs[i]);
    } catch (const moekit::Error& e) {
      throw RequestError(422, "tokenizer", "input " + std::to_string(i) + ": " + e.what());
    }
    out.push_back(token_spans(enc, t.inputs[i]));
  }
  res.set_content(out.dump(), kJson);
}

std::string Server::info_json() const {
  const BertConfig& c = loaded_.model->config;
  json id2label = json::object(), label2id = json::object();
  for (size_t i = 0; i < c.labels.size(); ++i) {
    id2label[std::to_string(i)] = c.labels[i];
    label2id[c.labels[i]] = i;
  }
  json dtypes = json::object();
  for (const auto& [dtype, n] : loaded_.dtype_counts) dtypes[dtype] = n;
  const json config = io::hf_config_json(c);
  return json{{"model_id", loaded_.path.string()},
              {"model_dtype", dtypes},
              {"model_type", {{"classifier", {{"id2label", id2label}, {"label2id", label2id}}}}},
              {"architecture", {{"model_type", c.model_type}, {"layers", c.num_hidden_layers},
                                {"hidden_size", c.hidden_size}}},
              {"moe", config.contains("moe") ? config["moe"] : json(nullptr)},
              {"max_input_length", max_len_},
              {"max_concurrent_requests", options_.max_concurrent_requests},
              {"max_batch_tokens", options_.max_batch_tokens},
              {"max_batch_requests", options_.max_batch_requests},
              {"max_batch_wait_us", options_.max_batch_wait_us},
              {"max_client_batch_size", options_.max_client_batch_size},
              {"version", "moekit 0.1.0"}}
      .dump();
}

void Server::log(const httplib::Request& req, const httplib::Response& res) {
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - request_start).count();
  // Known routes only, so a scan of random paths cannot grow the metrics without bound.
  const bool known = req.path == "/predict" || req.path == "/predict_tokens" || req.path == "/tokenize" || req.path == "/health" ||
                     req.path == "/info" || req.path == "/metrics";
  metrics_.record_request(known ? req.path : "other", res.status, seconds);
  if (log_rank_ < 2) return;
  char line[512];
  std::snprintf(line, sizeof line, "%s %s %s %d %zu bytes %.2f ms\n", req.remote_addr.c_str(), req.method.c_str(),
                req.path.c_str(), res.status, res.body.size(), 1e3 * seconds);
  std::cerr << line;
}

void serve(const ServeOptions& options) {
  // SIGTERM/SIGINT blocked before any thread exists (OpenMP's included), so only the signal
  // thread below receives them: stop() there, then run() drains and returns.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  Server server(options);
  const int port = server.bind();
  std::cerr << "moekit serve: " << server.model().path.string() << " listening on " << options.host << ":" << port
            << std::endl;
  std::atomic<bool> done{false};
  std::thread waiter([&] {
    const timespec tick{0, 200 * 1000 * 1000};
    while (!done) {
      if (sigtimedwait(&signals, nullptr, &tick) > 0) {
        std::cerr << "moekit serve: stopping: finishing queued requests" << std::endl;
        // Repeated until run() returns: a stop() racing the start of listening would be lost.
        while (!done) {
          server.stop();
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
    }
  });
  server.run();
  done = true;
  waiter.join();
  std::cerr << "moekit serve: stopped" << std::endl;
}

}  // namespace moekit::serve
