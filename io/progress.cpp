#include "io/progress.h"

#include <unistd.h>

#include <cstdio>

#include "model/error.h"

namespace moekit::io {

namespace {
bool g_quiet = false;
}

void Progress::set_quiet(bool quiet) { g_quiet = quiet; }

std::string format_duration(double s) {
  char buf[32];
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%.1fs", s);
  return buf;
}

Progress::Progress(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()), last_print_(start_) {}

Progress::~Progress() {
  if (!finished_ && printed_ && tty_) std::fputc('\n', stderr);
}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int64_t done, const std::string& extra) {
  if (g_quiet) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_print_).count();
  if (since < (tty_ ? 0.2 : 5.0)) return;
  last_print_ = now;
  print(done, extra, false);
}

void Progress::finish(const std::string& extra) {
  if (g_quiet || finished_) return;
  finished_ = true;
  print(total_, extra, true);
}

void Progress::print(int64_t done, const std::string& extra, bool final) {
  const double t = elapsed_seconds();
  const double rate = t > 0 ? static_cast<double>(done) / t : 0;
  std::string eta = final ? "done in " + format_duration(t)
                          : (rate > 0 && total_ > done ? "ETA " + format_duration((total_ - done) / rate) : "");
  char buf[512];
  // The label can hold file names: escaped like every message.
  const std::string label = escape_for_terminal(label_), more = escape_for_terminal(extra);
  std::snprintf(buf, sizeof buf, "%s %lld/%lld %s, %.1f %s/s, %s%s%s", label.c_str(), static_cast<long long>(done),
                static_cast<long long>(total_), unit_.c_str(), rate, unit_.c_str(), eta.c_str(),
                more.empty() ? "" : ", ", more.c_str());
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", buf, final ? "\n" : "");
    printed_ = !final;
  }
  else
    std::fprintf(stderr, "%s\n", buf);
}

}  // namespace moekit::io
