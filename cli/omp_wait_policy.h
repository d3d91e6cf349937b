// OpenMP threads that wait at a barrier spin briefly, then sleep, unless the user chose otherwise.
#pragma once

namespace moekit::cli {

// The spin count moekit sets (libgomp iterations of a pause instruction, whose length differs by CPU).
constexpr const char* kDefaultSpinCount = "10000";

// When neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set: sets GOMP_SPINCOUNT=kDefaultSpinCount and
// re-executes this program (/proc/self/exe, same pid and arguments) so that libgomp, which reads
// its environment once while the program loads, sees it. Returns if the user chose a policy or if
// the re-exec fails (then only child processes get the setting).
void default_to_short_omp_spin(char** argv);

}  // namespace moekit::cli
