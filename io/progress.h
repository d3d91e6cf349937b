// Progress of long work (lives in io/ as terminal output, so every library can use it).
// One progress line on stderr: refreshed in place on a terminal, plain lines (at most one every
// few seconds) when stderr is a file or pipe, so logs stay readable.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace moekit::io {

class Progress {
 public:
  Progress(std::string label, int64_t total, std::string unit = "items");
  ~Progress();
  // Reports `done` of total; `extra` is appended (e.g. "loss 0.41").
  void update(int64_t done, const std::string& extra = "");
  void finish(const std::string& extra = "");
  double elapsed_seconds() const;

  static void set_quiet(bool quiet);  // --quiet: no progress at all

 private:
  void print(int64_t done, const std::string& extra, bool final);

  std::string label_, unit_;
  int64_t total_;
  bool tty_;
  bool finished_ = false;
  bool printed_ = false;  // a terminal line is open and needs its newline
  std::chrono::steady_clock::time_point start_, last_print_;
};

std::string format_duration(double seconds);

}  // namespace moekit::io
