// Why a short spin: libgomp by default spins for up to ~300,000 iterations at every barrier. On a
// machine with more runnable threads than cores (a CI runner with parallel tests, a server beside
// other jobs), the thread a barrier waits for is often descheduled, and its partner burns the time
// slice spinning. Measured on a 2-core AMD EPYC (Zen 3) beside four build jobs of equal CPU share:
// the small bench model ran 1.6x-1.9x faster with passive waiting (no spin) than with the default
// (dense 2,340 vs 1,424 tokens/s, MoE 4,044 vs 2,155), and `pretrain` on the WordNet demo 3.7x.
// But on an idle 2-core Intel Xeon (model 207), passive waiting cost 8-11%: oneDNN's batched
// attention products ran 40% slower, their threads put to sleep and woken between steps.
// A short spin keeps both (same Xeon, small shape, tokens/s):
//   idle:           passive dense 32,410 MoE 56,631;  spin 1000: 35,334 / 58,183;  active 36,115 / 61,191
//   4 busy loops:   passive 10,854 / 17,857;           spin 1000: 10,939 / 17,630;  spin 300,000 6,095 / 7,111
// 10,000 rather than 1,000 (2026-12-03, same Xeon, the WordNet demo's teacher and MoE, 32 x 48):
// idle, three alternating rounds, spin 1000: 119-124k / 199-207k tokens/s, spin 10,000: 130-140k /
// 210-222k (+7-14%: at 1000 the partner thread was often asleep, woken through the kernel, between
// a layer's products); beside 4 busy loops 1000: 28-30k / 44-45k, 10,000: 27-45k / 39-67k, and
// 30,000 already lost (16k / 24k).
//
// Why a re-exec: libgomp reads its environment in its ELF initialiser, before main. A setenv from
// the executable's .preinit_array (which runs earlier) is undone when libc's own initialiser
// resets `environ` to the kernel's array, so the variable must be in the environment at exec.
#include "cli/omp_wait_policy.h"

#include <unistd.h>

#include <cstdlib>

namespace moekit::cli {

void default_to_short_omp_spin(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  if (setenv("GOMP_SPINCOUNT", kDefaultSpinCount, 0) != 0) return;
  execv("/proc/self/exe", argv);  // returns only on failure
}

}  // namespace moekit::cli
