// world() of a build with MPI: MPI_COMM_WORLD when an MPI launcher started the process, with
// errors returned (MPI_ERRORS_RETURN, turned into moekit::Error) and a watchdog thread that ends
// the job when a collective waits too long: Open MPI has no timeout on collectives, and a rank
// stuck outside MPI would otherwise hang the others forever.
#include <mpi.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "distill/communicator.h"
#include "model/error.h"

namespace moekit::distill {

namespace {

// The environment variables an MPI launcher sets (Open MPI's mpirun; PMI-1/2 and PMIx of srun,
// MPICH's hydra). A plain run sets none and stays a SingleProcess without starting MPI.
bool launched_by_mpi() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(name)) return true;
  return false;
}

double timeout_seconds() {
  const char* text = std::getenv("MOEKIT_MPI_TIMEOUT");
  if (!text || !*text) return 900;
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  if (*end || v < 0) fail("MOEKIT_MPI_TIMEOUT", std::string("expected seconds >= 0, got \"") + text + "\"");
  return v;
}

using Clock = std::chrono::steady_clock;

class MpiWorld final : public Communicator {
 public:
  MpiWorld() {
    int provided = 0;
    // FUNNELED: only the main thread calls MPI (the watchdog only calls MPI_Abort, which Open MPI
    // allows from any thread: it kills the job).
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      fail("MPI", "MPI_Init_thread failed");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    timeout_ = timeout_seconds();
    if (size_ > 1 && timeout_ > 0) watchdog_ = std::thread([this] { watch(); });
  }
  ~MpiWorld() override {
    stop_ = true;
    if (watchdog_.joinable()) watchdog_.join();
    MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allreduce_sum(float* data, size_t n) override { allreduce(data, n, MPI_FLOAT, MPI_SUM, "MPI_Allreduce(float)"); }
  void allreduce_sum(double* data, size_t n) override { allreduce(data, n, MPI_DOUBLE, MPI_SUM, "MPI_Allreduce(double)"); }
  int64_t allreduce_max(int64_t value) override {
    allreduce(&value, 1, MPI_INT64_T, MPI_MAX, "MPI_Allreduce(max)");
    return value;
  }
  void start_allreduce_sum(float* data, size_t n) override {
    for (size_t done = 0; done < n;) {
      const int count = static_cast<int>(std::min<size_t>(n - done, kMaxCount));
      pending_.emplace_back();
      check_rc(MPI_Iallreduce(MPI_IN_PLACE, data + done, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &pending_.back()),
               "MPI_Iallreduce(float)");
      done += static_cast<size_t>(count);
    }
  }
  void progress() override {
    if (pending_.empty()) return;
    int flag = 0;
    check_rc(MPI_Testall(static_cast<int>(pending_.size()), pending_.data(), &flag, MPI_STATUSES_IGNORE), "MPI_Testall");
    if (flag) pending_.clear();  // all done (and freed)
  }
  void wait_all() override {
    if (pending_.empty()) return;
    Waiting w(*this, "MPI_Iallreduce(float)");
    check_rc(MPI_Waitall(static_cast<int>(pending_.size()), pending_.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
    pending_.clear();
  }
  void broadcast(float* data, size_t n, int root) override {
    Waiting w(*this, "MPI_Bcast");
    for (size_t done = 0; done < n;) {
      const int count = static_cast<int>(std::min<size_t>(n - done, kMaxCount));
      check_rc(MPI_Bcast(data + done, count, MPI_FLOAT, root, MPI_COMM_WORLD), "MPI_Bcast");
      done += static_cast<size_t>(count);
    }
  }
  [[noreturn]] void abort(int exit_code) override {
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
  }

 private:
  static constexpr size_t kMaxCount = 1 << 30;  // MPI counts are int

  // Marks the time spent inside one collective for the watchdog.
  struct Waiting {
    Waiting(MpiWorld& w, const char* what) : world(w) {
      world.what_ = what;
      world.since_ = Clock::now().time_since_epoch().count();
    }
    ~Waiting() { world.since_ = 0; }
    MpiWorld& world;
  };

  void allreduce(void* data, size_t n, MPI_Datatype type, MPI_Op op, const char* what) {
    Waiting w(*this, what);
    int bytes = 0;
    MPI_Type_size(type, &bytes);
    for (size_t done = 0; done < n;) {
      const int count = static_cast<int>(std::min<size_t>(n - done, kMaxCount));
      check_rc(MPI_Allreduce(MPI_IN_PLACE, static_cast<char*>(data) + done * static_cast<size_t>(bytes), count, type,
                             op, MPI_COMM_WORLD),
               what);
      done += static_cast<size_t>(count);
    }
  }

  void check_rc(int rc, const char* what) const {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    fail("MPI", std::string(what) + " failed: " + std::string(text, static_cast<size_t>(len)));
  }

  void watch() {
    while (!stop_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      const auto since = since_.load();
      if (!since) continue;
      const double waited =
          std::chrono::duration<double>(Clock::now().time_since_epoch() - Clock::duration(since)).count();
      if (waited < timeout_) continue;
      std::fprintf(stderr,
                   "moekit: error: rank %d of %d: %s waited %.0f s for the other ranks (MOEKIT_MPI_TIMEOUT=%g); one "
                   "is stuck or gone, ending the job\n",
                   rank_, size_, what_.load(), waited, timeout_);
      std::fflush(stderr);
      MPI_Abort(MPI_COMM_WORLD, 1);
      std::_Exit(1);
    }
  }

  int rank_ = 0, size_ = 1;
  double timeout_ = 0;
  std::vector<MPI_Request> pending_;  // started non-blocking sums
  std::atomic<Clock::rep> since_{0};  // when the current collective began; 0 = in none
  std::atomic<const char*> what_{""};
  std::atomic<bool> stop_{false};
  std::thread watchdog_;
};

std::unique_ptr<MpiWorld> mpi;
bool started = false;

}  // namespace

Communicator& world() {
  if (!started) {
    started = true;
    if (launched_by_mpi()) mpi = std::make_unique<MpiWorld>();
  }
  if (mpi) return *mpi;
  return single_process();
}

Communicator* started_world() {
  if (!started) return nullptr;
  return mpi ? static_cast<Communicator*>(mpi.get()) : &single_process();
}

void finish_world() { mpi.reset(); }

std::string world_backend() {
  char version[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(version, &len);
  std::string v(version, static_cast<size_t>(len));
  if (const size_t nl = v.find_first_of(",\n"); nl != std::string::npos) v.resize(nl);
  return "MPI (" + v + ")";
}

}  // namespace moekit::distill
