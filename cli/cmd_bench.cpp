// moekit bench: tokens/s, latency, peak memory and file size of one or more models, side by side.
#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "distill/benchmark.h"
#include "model/error.h"

namespace moekit::cli {

namespace {

struct BenchCliOptions {
  std::vector<std::string> models;
  distill::BenchOptions bench;
  std::string precision;  // empty: each model's own (fp32, or bf16 for a bf16 export)
  bool json = false;
};

uint64_t model_bytes(const std::string& path) {
  uint64_t n = 0;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    for (const auto& e : std::filesystem::directory_iterator(path))
      if (e.is_regular_file()) n += e.file_size();
  } else {
    n = std::filesystem::file_size(path, ec);
  }
  return n;
}

void run_bench(const BenchCliOptions& o) {
  std::vector<io::LoadedModel> loaded;
  std::vector<BertModel*> models;
  const std::optional<Precision> precision = parse_precision_option(o.precision);
  for (const auto& m : o.models) {
    // --train runs backward and AdamW: float weights. Inference runs what predict and eval run.
    loaded.push_back(load_model_verbose(m, o.bench.train ? io::LoadFor::training : io::LoadFor::inference, precision));
    models.push_back(loaded.back().model.get());
  }
  const auto rows = distill::run_benchmark(models, o.models, o.bench);
  const int threads = omp_get_max_threads();
  nlohmann::json j = nlohmann::json::array();
  for (size_t i = 0; i < rows.size(); ++i) {
    j.push_back({{"model", rows[i].name},
                 {"mode", o.bench.train ? "train" : "inference"},
                 {"batch_size", o.bench.batch_size},
                 {"seq_len", o.bench.seq_len},
                 {"threads", threads},
                 // int8: the export's Linear layers run int8 kernels (the rest stays float)
                 {"precision", loaded[i].dtype_counts.count("I8") && !o.bench.train ? "int8"
                                                                                     : precision_name(loaded[i].precision)},
                 {"tokens_per_second", rows[i].tokens_per_second},
                 {"tokens_per_second_min", rows[i].tokens_per_second_min},
                 {"tokens_per_second_max", rows[i].tokens_per_second_max},
                 {"latency_ms", rows[i].latency_ms},
                 {"batch1_latency_ms", rows[i].batch1_latency_ms},
                 {"gflops", rows[i].gflops},
                 {"file_bytes", model_bytes(rows[i].name)},
                 {"ratio_to_first", rows[i].tokens_per_second / rows[0].tokens_per_second}});
  }
  const uint64_t peak = distill::peak_rss_bytes();
  // What oneDNN chose: the CPU's ISA class and the kernels that ran (e.g. "gemm:jit", "brg:avx512_core_amx").
  const nlohmann::json engine = {{"isa", matmul_isa().name},
                                 {"bf16_native", matmul_isa().bf16_native},
                                 {"bf16_hardware", matmul_isa().bf16_hardware},
                                 {"int8_vnni", matmul_isa().int8_vnni},
                                 {"kernels", matmul_impls()}};
  // How idle OpenMP threads wait (cli/omp_wait_policy.cpp): "spin 10000" unless the user chose.
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  const std::string wait_policy = policy ? policy : spin ? "spin " + std::string(spin) : "libgomp default";
  if (o.json) {
    std::cout << nlohmann::json{{"rows", j}, {"peak_rss_bytes", peak}, {"matmul", engine}, {"omp_wait_policy", wait_policy}}.dump(2) << "\n";
    return;
  }
  std::printf("| model | mode | precision | batch x seq | threads | tokens/s (median) | min-max | ms/batch | ms at batch 1 | GFLOP/s | file MB | vs first |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& r : j)
    std::printf("| %s | %s | %s | %d x %d | %d | %.0f | %.0f-%.0f | %.1f | %.2f | %.1f | %.2f | %.2fx |\n",
                r["model"].get<std::string>().c_str(), r["mode"].get<std::string>().c_str(),
                r["precision"].get<std::string>().c_str(), o.bench.batch_size,
                o.bench.seq_len, threads, r["tokens_per_second"].get<double>(), r["tokens_per_second_min"].get<double>(),
                r["tokens_per_second_max"].get<double>(), r["latency_ms"].get<double>(),
                r["batch1_latency_ms"].get<double>(), r["gflops"].get<double>(),
                static_cast<double>(r["file_bytes"].get<uint64_t>()) / 1e6, r["ratio_to_first"].get<double>());
  std::printf("peak memory (whole process): %.1f MB\n", static_cast<double>(peak) / 1e6);
  std::printf("matmul: oneDNN on %s (bf16 %s, int8 %s); kernels: %s\n", matmul_isa().name.c_str(),
              matmul_isa().bf16_native     ? "kernels"
              : matmul_isa().bf16_hardware ? "as fp32 (faster here than bf16 kernels)"
                                           : "emulated in fp32", matmul_isa().int8_vnni ? "VNNI" : "7-bit activations",
              matmul_impls().c_str());
  std::printf("OpenMP waiting: %s\n", escape_for_terminal(wait_policy).c_str());
}

}  // namespace

void register_bench(CLI::App& app) {
  auto o = std::make_shared<BenchCliOptions>();
  CLI::App* cmd = app.add_subcommand("bench", "Throughput and latency of models side by side (synthetic batches)");
  cmd->add_option("--model", o->models, "model directory (repeat to compare; the first is the baseline)")->required();
  cmd->add_option("--batch-size", o->bench.batch_size, "sequences per batch")->capture_default_str()->check(CLI::Range(1, 4096));
  cmd->add_option("--seq-len", o->bench.seq_len, "tokens per sequence")->capture_default_str()->check(CLI::Range(2, 4096));
  cmd->add_option("--warmup", o->bench.warmup, "untimed runs per model")->capture_default_str()->check(CLI::Range(0, 1000));
  cmd->add_option("--reps", o->bench.reps, "timed runs per model (median reported)")->capture_default_str()->check(CLI::Range(1, 10000));
  cmd->add_flag("--train", o->bench.train, "time a training step (forward + backward + AdamW) instead of inference");
  add_precision_option(cmd, o->precision);
  cmd->add_flag("--json", o->json, "print JSON");
  cmd->callback([o] { run_bench(*o); });
}

}  // namespace moekit::cli
