// Data-parallel collectives (DESIGN 2.12, llm.c and Marian): the trainer and importance see only
// this interface; MPI lives in distill/comm/world_mpi.cpp, and a build without MPI links
// distill/comm/world_single.cpp instead, so no other file needs an #ifdef.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace moekit::distill {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Sums over the ranks in place; every rank gets the same values. Collective: every rank calls it
  // with the same n, in the same order (a rank that never comes is caught by the watchdog).
  virtual void allreduce_sum(float* data, size_t n) = 0;
  virtual void allreduce_sum(double* data, size_t n) = 0;
  virtual int64_t allreduce_max(int64_t value) = 0;
  // The non-blocking sum (MPI_Iallreduce): starts summing data[0, n) in place over the ranks and
  // returns at once; the data must stay untouched until wait_all() has returned, and then holds
  // what allreduce_sum gives. progress() lets started sums advance without waiting (Open MPI moves
  // a non-blocking collective only inside MPI calls). Collective: same starts, same order.
  virtual void start_allreduce_sum(float* data, size_t n) = 0;
  virtual void progress() = 0;
  virtual void wait_all() = 0;
  // Rank `root`'s values to every rank.
  virtual void broadcast(float* data, size_t n, int root) = 0;
  // Ends the whole job with this exit code (MPI_Abort): for a rank whose error the others cannot see.
  [[noreturn]] virtual void abort(int exit_code) = 0;

  bool is_root() const { return rank() == 0; }
};

// One process: collectives are the identity.
class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce_sum(float*, size_t) override {}
  void allreduce_sum(double*, size_t) override {}
  int64_t allreduce_max(int64_t value) override { return value; }
  void start_allreduce_sum(float*, size_t) override {}
  void progress() override {}
  void wait_all() override {}
  void broadcast(float*, size_t, int) override {}
  [[noreturn]] void abort(int exit_code) override;
};

SingleProcess& single_process();

// The process's communicator: MPI's world when moekit is built with MPI and the process was started
// by an MPI launcher (mpirun, or srun with PMI/PMIx); MPI is initialised on the first call. Else a
// SingleProcess. Waits in a collective longer than MOEKIT_MPI_TIMEOUT seconds (default 900, 0 = no
// limit) abort the job with a message naming the rank and the collective.
Communicator& world();
// world() if it was called already, else nullptr (main's error handler must not start MPI).
Communicator* started_world();
// Finalises MPI if world() started it (at the end of main).
void finish_world();
// "MPI (Open MPI v4.1.4 ...)" or "no MPI in this build".
std::string world_backend();

// Which of `count` items (batches) rank `rank` of `ranks` takes: item i belongs to rank i % ranks.
inline bool owns(size_t item, const Communicator& comm) {
  return item % static_cast<size_t>(comm.size()) == static_cast<size_t>(comm.rank());
}

}  // namespace moekit::distill
