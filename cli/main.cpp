// moekit: one binary, one subcommand per pipeline step. The only place that prints errors.
#include <malloc.h>
#include <omp.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <new>

#include "cli/commands.h"
#include "cli/omp_wait_policy.h"
#include "distill/communicator.h"
#include "io/progress.h"
#include "model/error.h"

namespace {

// The one error line, exit code `code`. In a data-parallel run the line names the rank, and the
// whole job ends (MPI_Abort): the other ranks would otherwise wait for this one forever.
int report_error(const std::string& text, int code) {
  moekit::distill::Communicator* world = moekit::distill::started_world();
  if (world && world->size() > 1) {
    std::cerr << "moekit: error: rank " << world->rank() << " of " << world->size() << ": " << text << std::endl;
    world->abort(code);
  }
  std::cerr << "moekit: error: " << text << "\n";
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  moekit::cli::default_to_short_omp_spin(argv);
  // Training allocates the same large activation buffers every step; keeping freed memory in the
  // heap (no trimming, no per-buffer mmap) avoids re-faulting fresh zeroed pages each time.
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  CLI::App app{"moekit: turn dense BERT models into fast Mixture-of-Experts models"};
  app.set_version_flag("--version", "moekit 0.1.0 (data parallelism: " + moekit::distill::world_backend() + ")");
  int threads = 0;
  bool quiet = false;
  app.add_option("--threads", threads, "OpenMP threads for every kernel (0 = all cores)")->check(CLI::NonNegativeNumber);
  app.add_flag("--quiet", quiet, "no progress lines on stderr");
  app.require_subcommand(1);
  moekit::cli::register_commands(app);
  moekit::cli::register_run(app);
  app.parse_complete_callback([&] {
    if (threads > 0) omp_set_num_threads(threads);
    moekit::io::Progress::set_quiet(quiet);
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return report_error(moekit::escape_for_terminal(e.what()) + " (see moekit --help)", 2);
  } catch (const std::bad_alloc&) {
    return report_error("out of memory", 1);
  } catch (const std::exception& e) {  // moekit::Error and the rest: file text escaped once, here
    return report_error(moekit::escape_for_terminal(e.what()), 1);
  }
  moekit::distill::finish_world();
  return 0;
}
