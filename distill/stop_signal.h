// SIGTERM/SIGINT during training: the handler only records the signal; the trainer looks at it
// after each optimizer step, writes a checkpoint and stops with an Error naming the step (so the
// run can continue with --resume). Installed for the lifetime of a StopSignal (the trainer's run).
#pragma once
#include <csignal>

namespace moekit::distill {

class StopSignal {
 public:
  StopSignal();   // installs the handlers for SIGTERM and SIGINT
  ~StopSignal();  // restores the previous ones
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  int received() const;  // the signal number, or 0
  static const char* name(int signal);

 private:
  struct sigaction old_term_ {}, old_int_ {};
};

}  // namespace moekit::distill
