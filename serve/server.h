// `moekit serve`: TEI's routes over cpp-httplib (DESIGN.md 2.12).
//   POST /predict, POST /tokenize, GET /health, GET /info, GET /metrics
// A token-classification model answers /predict (and /predict_tokens) per word and entity
// (serve/token_answer.h); a question-answering model takes {"question", "context"} inputs.
// Errors are TEI's JSON {"error", "error_type"}: 413 too long / too many inputs / body too large,
// 422 malformed JSON or wrong shapes, 429 queue full, 503 shutting down.
// Life cycle: the constructor loads the model; bind() opens the port; run() serves until stop()
// (thread-safe, e.g. from a signal thread), then finishes every request already received and
// returns.
#pragma once
#include <atomic>
#include <memory>
#include <string>

#include "io/checkpoint.h"
#include "io/token_dataset.h"
#include "io/tokenizer.h"
#include "serve/request.h"
#include "serve/metrics.h"
#include "serve/scheduler.h"
#include "serve/serve_options.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace moekit::serve {

class Server {
 public:
  // Loads options.model for inference (int8 exports on int8 kernels, as predict). Throws Error.
  explicit Server(const ServeOptions& options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Opens the port (options.port, 0 = any free one) and returns it. Throws Error when busy.
  int bind();
  void run();
  void stop();

  Scheduler& scheduler() { return *scheduler_; }
  const io::LoadedModel& model() const { return loaded_; }
  int max_input_length() const { return max_len_; }

 private:
  void predict(const httplib::Request& req, httplib::Response& res);
  void predict_tokens(PredictRequest p, httplib::Response& res);
  void predict_answers(const httplib::Request& req, httplib::Response& res);
  void tokenize(const httplib::Request& req, httplib::Response& res);
  std::string info_json() const;
  io::EncodedExample encode(const std::string& text, const std::string* pair, bool truncate, size_t index) const;
  io::EncodedExample encode_words(const std::vector<io::WordSpan>& words, bool truncate, size_t index) const;
  void log(const httplib::Request& req, const httplib::Response& res);

  ServeOptions options_;
  io::LoadedModel loaded_;
  std::unique_ptr<io::Tokenizer> tokenizer_;
  int max_len_ = 0;
  Metrics metrics_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<httplib::Server> http_;
  int listen_socket_ = -1;  // httplib's listening socket, once bound
  static constexpr int kListenBacklog = 1024;
  std::atomic<bool> stopping_{false};
  int log_rank_ = 2;
};

// The command: loads, binds, prints "listening on HOST:PORT" on stderr, serves until SIGTERM or
// SIGINT, drains, returns (the process then exits 0).
void serve(const ServeOptions& options);

}  // namespace moekit::serve
