// Runs one step's process (fork/exec) with its output captured: the runner owns the log, and a
// step that fails or crashes leaves the runner standing to report it.
#pragma once
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

namespace moekit::recipes {

struct ProcessResult {
  int exit_code = 0;        // 128 + signal when killed
  std::string stdout_text;  // only when captured
  std::string last_error;   // last non-empty stderr line (the command's "moekit: error: ...")
};

// Runs `program` (a path, or a name looked up in PATH) with argv in `cwd` (empty = ours). Its stderr,
// and its stdout unless `capture_stdout`, are written to `log` and echoed to ours.
ProcessResult run_process(const std::string& program, const std::vector<std::string>& argv,
                          const std::filesystem::path& cwd, bool capture_stdout, std::ostream& log);

}  // namespace moekit::recipes
