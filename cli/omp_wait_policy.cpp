// Why passive: libgomp spins for up to ~300,000 iterations at every barrier. On a machine with more
// runnable threads than cores (a CI runner with parallel tests, a server beside other jobs), the
// thread a barrier waits for is often descheduled, and its partner burns the time slice spinning.
// Measured on a 2-core AMD EPYC (Zen 3) beside four build jobs of equal CPU share: the small bench
// model ran 1.6x-1.9x faster with passive waiting (dense 2,340 vs 1,424 tokens/s, MoE 4,044 vs
// 2,155), and `pretrain` on the WordNet demo 3.7x. With the cores to itself the two policies were
// within noise (11,041 vs 11,446 and 17,668 vs 17,141 tokens/s).
//
// Why a re-exec: libgomp reads its environment in its ELF initialiser, before main. A setenv from
// the executable's .preinit_array (which runs earlier) is undone when libc's own initialiser
// resets `environ` to the kernel's array, so the variable must be in the environment at exec.
#include "cli/omp_wait_policy.h"

#include <unistd.h>

#include <cstdlib>

namespace moekit::cli {

void default_to_passive_omp_waiting(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  if (setenv("OMP_WAIT_POLICY", "passive", 0) != 0) return;
  execv("/proc/self/exe", argv);  // returns only on failure
}

}  // namespace moekit::cli
