// Options of `moekit serve`, one struct with its defaults (the CLI binds them, tests set them).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace moekit::serve {

struct ServeOptions {
  std::string model;             // model directory or exported file
  std::string host = "127.0.0.1";
  int port = 8080;               // 0 = any free port (printed on stderr when listening)
  int64_t max_batch_tokens = 16384;   // real tokens the scheduler takes per cycle
  int max_batch_requests = 32;        // requests per cycle, and sequences per forward pass
  int max_batch_wait_us = 3000;       // a cycle's wait for the last cycle's clients (serve/scheduler.h)
  int max_concurrent_requests = 512;  // queued requests; beyond it 429
  int max_client_batch_size = 32;     // inputs per /predict or /tokenize request; beyond it 413
  int max_input_length = 0;           // tokens per input; 0 = the model's limit, at most 512
  size_t payload_limit = 2000000;     // request body bytes; beyond it 413
  int read_timeout = 10;              // seconds a client may take to send its request
  int write_timeout = 10;             // seconds a client may take to read its answer
  int http_threads = 64;              // connections served at once (each blocks on its answer)
  std::string log_level = "info";     // error | warn | info (one line per request) | debug
};

}  // namespace moekit::serve
