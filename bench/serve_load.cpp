// Load generator for `moekit serve` (numbers for notes, not a test): C client threads, each sending
// R /predict requests of one text over one keep-alive connection. Prints requests/s, tokens/s
// (from the server's moekit_tokens_total), p50/p99 latency and the status counts as one JSON line.
// In C++ because a Node.js client spent more than one of the machine's two cores on its own
// requests, so it measured itself rather than the server.
//   build/bench/serve_load HOST PORT CLIENTS REQUESTS_PER_CLIENT WORDS_PER_TEXT
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

long long server_tokens(const std::string& host, int port) {
  httplib::Client cli(host, port);
  const auto res = cli.Get("/metrics");
  if (!res || res->status != 200) return -1;
  std::smatch m;
  static const std::regex re("(^|\n)moekit_tokens_total ([0-9]+)");
  return std::regex_search(res->body, m, re) ? std::stoll(m[2]) : -1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: serve_load HOST PORT CLIENTS REQUESTS_PER_CLIENT WORDS_PER_TEXT\n");
    return 2;
  }
  const std::string host = argv[1];
  const int port = std::atoi(argv[2]), clients = std::atoi(argv[3]), per_client = std::atoi(argv[4]),
            words = std::atoi(argv[5]);
  if (port <= 0 || clients <= 0 || per_client <= 0 || words <= 0) {
    std::fprintf(stderr, "serve_load: PORT, CLIENTS, REQUESTS_PER_CLIENT and WORDS_PER_TEXT must be positive\n");
    return 2;
  }
  const long long before = server_tokens(host, port);
  if (before < 0) {
    std::fprintf(stderr, "serve_load: no moekit server at %s:%d (GET /metrics failed)\n", host.c_str(), port);
    return 1;
  }
  std::mutex mutex;
  std::vector<double> latencies_ms;
  std::map<int, int> statuses;  // HTTP status, or -1 for a failed connection
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int id = 0; id < clients; ++id)
    threads.emplace_back([&, id] {
      httplib::Client cli(host, port);
      cli.set_keep_alive(true);
      cli.set_tcp_nodelay(true);
      cli.set_read_timeout(60, 0);
      std::vector<double> mine;
      std::map<int, int> codes;
      for (int r = 0; r < per_client; ++r) {
        std::string text;  // the same words as the former Node client: w0..w39 of the test vocabularies
        for (int i = 0; i < words; ++i) text += (i ? " w" : "w") + std::to_string((id * 7 + r * 13 + i) % 40);
        const std::string body = nlohmann::json{{"inputs", text}, {"truncate", true}}.dump();
        const auto start = std::chrono::steady_clock::now();
        const auto res = cli.Post("/predict", body, "application/json");
        mine.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
        ++codes[res ? res->status : -1];
      }
      std::lock_guard<std::mutex> lock(mutex);
      latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
      for (const auto& [code, n] : codes) statuses[code] += n;
    });
  for (std::thread& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const long long done = server_tokens(host, port) - before;
  std::sort(latencies_ms.begin(), latencies_ms.end());
  const auto quantile = [&](double p) {
    return latencies_ms[std::min(latencies_ms.size() - 1, static_cast<size_t>(p * static_cast<double>(latencies_ms.size())))];
  };
  nlohmann::json status_json = nlohmann::json::object();
  for (const auto& [code, n] : statuses) status_json[std::to_string(code)] = n;
  const double n = static_cast<double>(latencies_ms.size());
  std::printf("%s\n", nlohmann::json{{"clients", clients}, {"requests", latencies_ms.size()}, {"seconds", seconds},
                                     {"requests_per_second", n / seconds},
                                     {"tokens_per_second", static_cast<double>(done) / seconds},
                                     {"p50_ms", quantile(0.5)}, {"p99_ms", quantile(0.99)}, {"statuses", status_json}}
                          .dump()
                          .c_str());
  return 0;
}
