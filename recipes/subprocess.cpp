#include "recipes/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <iostream>

#include "model/error.h"

namespace moekit::recipes {

namespace {

struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() {
    if (pipe2(fd, O_CLOEXEC) != 0) fail("", std::string("cannot create a pipe: ") + std::strerror(errno));
  }
  ~Pipe() {
    for (int f : fd)
      if (f >= 0) close(f);
  }
  void close_end(int i) {
    if (fd[i] >= 0) close(fd[i]);
    fd[i] = -1;
  }
};

}  // namespace

ProcessResult run_process(const std::string& program, const std::vector<std::string>& argv,
                          const std::filesystem::path& cwd, bool capture_stdout, std::ostream& log) {
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::cout.flush();
  std::cerr.flush();
  log.flush();
  const bool has_slash = program.find('/') != std::string::npos;
  Pipe out, err;
  const pid_t pid = fork();
  if (pid < 0) fail("", std::string("fork failed: ") + std::strerror(errno));
  if (pid == 0) {                      // child: only async-signal-safe calls until exec
    prctl(PR_SET_PDEATHSIG, SIGTERM);  // a killed runner takes its step along (it resumes next run)
    dup2(out.fd[1], STDOUT_FILENO);
    dup2(err.fd[1], STDERR_FILENO);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) {
      const char msg[] = "moekit: error: cannot enter the step's directory\n";
      (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
      _exit(127);
    }
    if (has_slash)
      execv(program.c_str(), cargv.data());
    else
      execvp(program.c_str(), cargv.data());
    const char msg[] = "moekit: error: cannot execute the step's program\n";
    (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
    _exit(127);
  }
  out.close_end(1);
  err.close_end(1);
  ProcessResult result;
  std::string err_tail;
  pollfd fds[2] = {{out.fd[0], POLLIN, 0}, {err.fd[0], POLLIN, 0}};
  char buf[65536];
  int open = 2;
  while (open > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        fds[i].fd = -1;
        --open;
        continue;
      }
      const std::string chunk(buf, static_cast<size_t>(n));
      if (i == 0 && capture_stdout) {
        result.stdout_text += chunk;
        continue;  // the step's JSON is saved by the runner, not echoed
      }
      log << chunk;
      log.flush();
      (i == 0 ? std::cout : std::cerr) << chunk << std::flush;
      if (i == 1) {
        err_tail += chunk;
        if (err_tail.size() > 8192) err_tail.erase(0, err_tail.size() - 4096);
      }
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  // The last line that is not a progress line fragment.
  size_t end = err_tail.find_last_not_of("\r\n ");
  if (end != std::string::npos) {
    const size_t begin = err_tail.find_last_of("\r\n", end);
    result.last_error = err_tail.substr(begin == std::string::npos ? 0 : begin + 1,
                                        end - (begin == std::string::npos ? 0 : begin + 1) + 1);
  }
  return result;
}

}  // namespace moekit::recipes
