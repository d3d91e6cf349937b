// world() of a build without MPI: always one process.
#include "distill/communicator.h"

namespace moekit::distill {

namespace {
bool started = false;
}

Communicator& world() {
  started = true;
  return single_process();
}
Communicator* started_world() { return started ? &single_process() : nullptr; }
void finish_world() {}
std::string world_backend() { return "no MPI in this build"; }

}  // namespace moekit::distill
