// moekit serve: the TEI-compatible HTTP server (serve/server.h); options only.
#include "cli/commands.h"
#include "serve/server.h"

namespace moekit::cli {

void register_serve(CLI::App& app) {
  auto o = std::make_shared<serve::ServeOptions>();
  CLI::App* cmd = app.add_subcommand("serve", "HTTP inference server (Hugging Face TEI routes), dynamic batching");
  cmd->add_option("--model", o->model, "model directory or exported file")->required();
  cmd->add_option("--host", o->host, "address to listen on")->capture_default_str();
  cmd->add_option("--port", o->port, "port (0 = any free port, printed on stderr)")->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--max-batch-tokens", o->max_batch_tokens, "real tokens the scheduler takes per cycle")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--max-batch-requests", o->max_batch_requests, "requests per cycle and sequences per forward pass")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--max-batch-wait-us", o->max_batch_wait_us,
                  "microseconds a cycle waits for the last cycle's clients to send again (0 = never)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-concurrent-requests", o->max_concurrent_requests, "queued requests; beyond it 429")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--max-client-batch-size", o->max_client_batch_size, "inputs per request; beyond it 413")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--max-input-length", o->max_input_length, "tokens per input (0 = model limit, at most 512)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--payload-limit", o->payload_limit, "request body bytes; beyond it 413")->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--read-timeout", o->read_timeout, "seconds a client may take to send a request")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--write-timeout", o->write_timeout, "seconds a client may take to read an answer")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--http-threads", o->http_threads, "connections served at once")->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--log-level", o->log_level, "error, warn, info (one line per request) or debug")
      ->capture_default_str()->check(CLI::IsMember({"error", "warn", "info", "debug"}));
  cmd->callback([o] { serve::serve(*o); });
}

}  // namespace moekit::cli
