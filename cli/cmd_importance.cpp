// moekit importance: MoEBERT neuron importance of every FFN on task data -> HDF5.
#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "compress/importance.h"

namespace moekit::cli {

namespace {

struct ImportanceOptions {
  std::string model, data, out;
  int64_t batches = 0;
  size_t batch_size = 32;
  int max_seq_len = 0;
};

void run_importance(const ImportanceOptions& o) {
  distill::Communicator& comm = data_parallel_world();
  io::LoadedModel loaded = load_model_verbose(o.model);
  const auto examples = load_encoded(o.data, loaded, o.max_seq_len, true, kTrainMaxLen);
  auto imp = compress::score_importance(*loaded.model, examples, o.batch_size, o.batches, true,
                                        static_cast<size_t>(comm.rank()), static_cast<size_t>(comm.size()));
  if (comm.size() > 1) {  // every rank scored its batches: the sums are the whole data's
    std::vector<double> flat{static_cast<double>(imp.examples)};
    for (const auto& layer : imp.layers) flat.insert(flat.end(), layer.begin(), layer.end());
    comm.allreduce_sum(flat.data(), flat.size());
    imp.examples = static_cast<int64_t>(flat[0]);
    size_t at = 1;
    for (auto& layer : imp.layers)
      for (double& v : layer) v = flat[at++];
  }
  if (!comm.is_root()) return;
  compress::write_importance(o.out, imp, o.model, o.data);
  std::printf("importance of %lld FFN neurons x %zu layers from %lld examples -> %s\n",
              static_cast<long long>(loaded.model->config.intermediate_size), imp.layers.size(),
              static_cast<long long>(imp.examples), o.out.c_str());
}

}  // namespace

void register_importance(CLI::App& app) {
  auto o = std::make_shared<ImportanceOptions>();
  CLI::App* cmd = app.add_subcommand("importance", "Score every FFN neuron (MoEBERT importance) on labelled data");
  cmd->add_option("--model", o->model, "dense model directory")->required();
  cmd->add_option("--data", o->data, "labelled data (usually the training set)")->required();
  cmd->add_option("--out", o->out, "output HDF5 file (importance.h5)")->required();
  cmd->add_option("--batches", o->batches, "use only the first N batches (0 = all data)")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--batch-size", o->batch_size, "examples per batch")->capture_default_str()->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--max-seq-len", o->max_seq_len, "truncate examples to this many tokens (0 = the model's limit, at most 128)")->capture_default_str();
  cmd->callback([o] { run_importance(*o); });
}

}  // namespace moekit::cli
