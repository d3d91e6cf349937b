#include "distill/communicator.h"

#include <cstdlib>

namespace moekit::distill {

void SingleProcess::abort(int exit_code) { std::exit(exit_code); }

SingleProcess& single_process() {
  static SingleProcess single;
  return single;
}

}  // namespace moekit::distill
