// OpenMP threads that wait at a barrier sleep instead of spinning, unless the user chose otherwise.
#pragma once

namespace moekit::cli {

// When neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set: sets OMP_WAIT_POLICY=passive and
// re-executes this program (/proc/self/exe, same pid and arguments) so that libgomp, which reads
// its environment once while the program loads, sees it. Returns if the user chose a policy or if
// the re-exec fails (then only child processes get the setting).
void default_to_passive_omp_waiting(char** argv);

}  // namespace moekit::cli
