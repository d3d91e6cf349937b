#include "distill/trainer.h"

#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "distill/adamw.h"
#include "distill/data_plan.h"
#include "distill/evaluate.h"
#include "distill/grad_sync.h"
#include "io/progress.h"
#include "distill/schedule.h"
#include "distill/stop_signal.h"
#include "distill/train_state.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "model/error.h"
#include "model/loss.h"

namespace moekit::distill {

namespace fs = std::filesystem;

LossFn task_loss_fn() {
  return [](BertModel& model, const Batch& batch, Rng& rng, float scale) {
    ForwardCache cache;
    Outputs out = model.forward(batch, &cache, &rng);
    Mat dlogits;
    LossTerms t;
    t.total = task_loss(model.config.task, out.logits, batch, &dlogits);
    t.terms["task"] = t.total;
    t.expert_tokens = out.expert_tokens;
    t.routed_slots = out.routed_slots;
    t.dropped_slots = out.dropped_slots;
    dlogits *= scale;
    model.backward(batch, dlogits, cache);
    return t;
  };
}

namespace {

// The options a resumed run must share with the run it continues.
nlohmann::json run_identity(const TrainOptions& o, int64_t total_steps) {
  return {{"batch_size", o.batch_size}, {"grad_accum", o.grad_accum}, {"lr", o.lr},
          {"seed", o.seed},             {"total_steps", total_steps}, {"max_seq_len", o.max_seq_len},
          {"weight_decay", o.weight_decay}, {"precision", o.precision}};
}

// The resume rules: the run's options unchanged, except that the world size may differ when the
// global batch (ranks x grad_accum micro-batches per step) stays the same.
void check_resumable(const fs::path& ckpt, nlohmann::json saved, nlohmann::json wanted, bool root) {
  const int64_t saved_world = saved.value("world_size", int64_t{1});  // written before data parallelism
  const int64_t world = wanted.at("world_size").get<int64_t>();
  const int64_t saved_accum = saved.value("grad_accum", int64_t{1}), accum = wanted.at("grad_accum").get<int64_t>();
  for (auto* j : {&saved, &wanted}) {
    j->erase("world_size");
    j->erase("grad_accum");
  }
  if (saved != wanted) fail(ckpt, "was written with other options (" + saved.dump() + "), not " + wanted.dump());
  if (saved_world * saved_accum != world * accum)
    fail(ckpt, "was written by " + std::to_string(saved_world) + " rank(s) x --grad-accum " + std::to_string(saved_accum) +
                   " micro-batches per step, not " + std::to_string(world) + " x " + std::to_string(accum) +
                   ": the global batch must stay the same" +
                   ((saved_world * saved_accum) % world == 0
                        ? "; hint: --grad-accum " + std::to_string(saved_world * saved_accum / world)
                        : std::string()));
  if (saved_world != world && root)
    std::fprintf(stderr,
                 "resuming a run of %lld rank(s) on %lld: the global batch is the same (%lld micro-batches per step), "
                 "so it continues (equal up to float round-off)\n",
                 static_cast<long long>(saved_world), static_cast<long long>(world),
                 static_cast<long long>(world * accum));
}

// metrics.jsonl keeps only lines up to `step` (a resumed run rewrites what follows).
void truncate_metrics(const fs::path& file, int64_t step) {
  if (!fs::exists(file)) return;
  std::ifstream in(file);
  std::string kept, line;
  while (std::getline(in, line)) {
    try {
      if (nlohmann::json::parse(line).at("step").get<int64_t>() <= step) kept += line + "\n";
    } catch (const std::exception&) {
      // a torn last line of a killed run
    }
  }
  in.close();
  io::write_text_atomic(file, kept);
}

// Fraction of routed tokens per expert, per layer ([] for dense layers).
nlohmann::json load_fractions(const std::vector<std::vector<int64_t>>& load) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& layer : load) {
    int64_t total = 0;
    for (int64_t n : layer) total += n;
    nlohmann::json row = nlohmann::json::array();
    for (int64_t n : layer) row.push_back(total ? static_cast<double>(n) / static_cast<double>(total) : 0.0);
    out.push_back(row);
  }
  return out;
}

// Sets model.backward_hook for one scope.
struct BackwardHookScope {
  BackwardHookScope(BertModel& m, BackwardHook hook) : model(m) { model.backward_hook = std::move(hook); }
  ~BackwardHookScope() { model.backward_hook = nullptr; }
  BertModel& model;
};

// OUT holds the run's other files (metrics, checkpoints), so the best model is written to a
// temporary directory and its files renamed into OUT one by one (each rename is atomic).
void save_best_model(const fs::path& out, BertModel& model, const io::Vocab* vocab, bool do_lower_case,
                     const std::vector<fs::path>& tokenizer_files) {
  const fs::path tmp = io::temp_sibling(out / "best");
  io::save_model(tmp, model, vocab, do_lower_case, tokenizer_files);
  for (const auto& e : fs::directory_iterator(tmp)) fs::rename(e.path(), out / e.path().filename());
  fs::remove_all(tmp);
}

}  // namespace

TrainResult train(BertModel& model, const io::Vocab* vocab, bool do_lower_case, const TrainData& data,
                  const TrainOptions& o, const LossFn& loss, const ParamList& trainable_in,
                  const DevEval& dev_eval_in, Communicator& comm) {
  const bool root = comm.is_root();  // only rank 0 writes
  if (data.train.empty()) fail(o.train, "no training examples");
  if (data.dev.empty()) fail(o.dev, "no dev examples");
  model.set_precision(parse_precision(o.precision));
  model.set_train_routing({o.capacity_factor, o.router_jitter});
  const ParamList all = model.params();
  const ParamList trainable = trainable_in.empty() ? all : trainable_in;
  const size_t batches_per_epoch = (data.train.size() + o.batch_size - 1) / static_cast<size_t>(o.batch_size);
  const int64_t slots = static_cast<int64_t>(o.grad_accum) * comm.size();  // micro-batches per step, all ranks
  const int64_t steps_per_epoch = std::max<int64_t>(1, static_cast<int64_t>(batches_per_epoch) / slots);
  const int64_t total_steps = o.max_steps > 0 ? o.max_steps : steps_per_epoch * o.epochs;
  const int64_t eval_every = o.eval_every > 0 ? o.eval_every : steps_per_epoch;
  const int64_t save_every = o.save_every > 0 ? o.save_every : eval_every;
  LinearSchedule schedule{o.lr,
                          o.warmup_steps > 0 ? o.warmup_steps : static_cast<int64_t>(std::llround(o.warmup_ratio * total_steps)),
                          total_steps};
  AdamW adam(trainable, {static_cast<float>(o.adam_beta1), static_cast<float>(o.adam_beta2),
                         static_cast<float>(o.adam_eps), static_cast<float>(o.weight_decay)});
  if (root) fs::create_directories(o.out);
  const fs::path metrics_path = fs::path(o.out) / "metrics.jsonl";

  TrainState state;
  state.options = run_identity(o, total_steps);
  state.options["world_size"] = comm.size();
  if (!o.resume.empty()) {
    auto ckpt = latest_checkpoint(o.resume);
    if (!ckpt) fail(o.resume, "no complete checkpoint to resume from (nothing under checkpoints/)");
    const nlohmann::json wanted = state.options;
    state = load_checkpoint(*ckpt, trainable, adam);
    if (!state.options.contains("precision")) state.options["precision"] = "fp32";  // checkpoints before --precision
    check_resumable(*ckpt, state.options, wanted, root);
    state.options = wanted;
    if (root) {
      truncate_metrics(metrics_path, state.step);
      std::fprintf(stderr, "resuming from %s (step %lld of %lld)\n", ckpt->string().c_str(),
                   static_cast<long long>(state.step), static_cast<long long>(total_steps));
    }
  } else if (root) {
    io::write_text_atomic(metrics_path, "");
  }
  // Every rank starts from rank 0's weights (all loaded the same files: this rules out any drift).
  if (comm.size() > 1)
    for (Param* p : all) comm.broadcast(p->value.data(), static_cast<size_t>(p->value.size()), 0);
  const SyncOptions sync_options = sync_options_from_env();
  GradientSync sync(comm, trainable, model.backward_stages(), sync_options.bucket_floats);
  const bool overlap = sync_options.overlap && sync.overlaps();
  double step_seconds = 0;  // time in training steps (not evaluation or saving), for the allreduce share
  double window_step_seconds = 0, window_meet_start = 0, window_wait_start = 0;  // for metrics.jsonl

  std::ofstream metrics;
  if (root) metrics.open(metrics_path, std::ios::app);
  auto plan = epoch_batches(data.train, static_cast<size_t>(o.batch_size), o.seed, state.epoch);
  io::Progress progress("train", total_steps - state.step, "steps");
  TrainResult result;
  int64_t window_tokens = 0;
  double window_loss = 0;
  int window_steps = 0;
  std::map<std::string, double> window_terms;
  std::vector<std::vector<int64_t>> window_load;  // expert load since the last log line
  int64_t window_routed = 0, window_dropped = 0;  // slots, with --capacity-factor
  auto window_start = std::chrono::steady_clock::now();
  const auto run_start = window_start;
  int64_t run_tokens = 0;
  const int64_t first_step = state.step;

  DevEval dev_eval = dev_eval_in;
  if (!dev_eval.fn) {
    dev_eval.metric = o.metric.empty() ? default_metric(model.config.task) : o.metric;
    dev_eval.lower_is_better = lower_is_better(dev_eval.metric);
    dev_eval.fn = [&](const BertModel& m) {
      // Each rank runs its share of the batches; the summed logits are the whole set's (others' rows are 0).
      auto r = run_inference(m, data.dev, static_cast<size_t>(o.eval_batch_size), "", static_cast<size_t>(comm.rank()),
                             static_cast<size_t>(comm.size()));
      if (comm.size() > 1) {
        comm.allreduce_sum(r.logits.data(), static_cast<size_t>(r.logits.size()));
        comm.allreduce_sum(r.token_logits.data(), static_cast<size_t>(r.token_logits.size()));
        for (Eigen::Index i = 0; i < r.logits.rows(); ++i) r.logits.row(i).maxCoeff(&r.predicted[static_cast<size_t>(i)]);
      }
      return task_metrics(m.config.task, r, data.dev, m.config.labels, qa_decode_options(m.config));
    };
  }
  result.metric = dev_eval.metric;

  const StopSignal stop;
  // Where a failed or stopped run can continue from (nothing is saved after a bad step).
  auto last_good = [&] {
    const auto ckpt = latest_checkpoint(o.out);
    return ckpt ? "; the last good checkpoint is " + ckpt->string() : std::string("; no checkpoint was written yet");
  };
  // Adds per-expert token counts into `sum`.
  auto add_load = [](std::vector<std::vector<int64_t>>& sum, const std::vector<std::vector<int64_t>>& load) {
    if (sum.size() < load.size()) sum.resize(load.size());
    for (size_t l = 0; l < load.size(); ++l) {
      if (sum[l].size() < load[l].size()) sum[l].resize(load[l].size(), 0);
      for (size_t e = 0; e < load[l].size(); ++e) sum[l][e] += load[l][e];
    }
  };
  while (state.step < total_steps) {
    const auto step_start = std::chrono::steady_clock::now();
    zero_grads(all);
    LossTerms step_terms;
    int64_t step_tokens = 0;
    // The step's global batch: `slots` micro-batches of the plan, in order, on every rank (so epoch
    // and cursor agree); rank r runs the slots r, r + ranks, ...
    for (int64_t slot = 0; slot < slots; ++slot) {
      if (state.cursor >= static_cast<int64_t>(plan.size())) {
        ++state.epoch;
        state.cursor = 0;
        plan = epoch_batches(data.train, static_cast<size_t>(o.batch_size), o.seed, state.epoch);
      }
      const auto& indices = plan[static_cast<size_t>(state.cursor++)];
      if (!owns(static_cast<size_t>(slot), comm)) continue;
      if (slot >= comm.size()) sync.stash();  // not this rank's first micro-batch of the step
      Batch batch = io::make_batch(data.train, indices, static_cast<int32_t>(model.config.pad_token_id));
      // Dropout draws depend only on (seed, step, global slot), not on the rank count: a resumed
      // run replays them exactly, and N ranks draw what one process with N x --grad-accum draws.
      const int64_t stride = std::max<int64_t>(64, slots);
      Rng dropout(o.seed ^ (0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(state.step * stride + slot + 1)));
      // This rank's last micro-batch of the step: its backward hands each finished layer's grads
      // to the allreduce (the hook is cleared on the way out, also when the loss throws).
      const bool last = slot + comm.size() >= slots;
      BackwardHookScope hook(model, last && overlap ? BackwardHook([&](size_t s) { sync.stage_done(s); })
                                                             : BackwardHook());
      LossTerms t = loss(model, batch, dropout, 1.0f / static_cast<float>(slots));
      step_terms.total += t.total / static_cast<double>(slots);
      for (const auto& [k, v] : t.terms) step_terms.terms[k] += v / static_cast<double>(slots);
      add_load(step_terms.expert_tokens, t.expert_tokens);
      step_tokens += batch.real_tokens();
      // capacity drops: this rank's share only (drop_rate is a ratio of this rank's slots)
      window_routed += t.routed_slots;
      window_dropped += t.dropped_slots;
    }
    // Data parallelism: the stats summed, the gradient sums (started during the backward) awaited;
    // with one rank this only adds back the stashed micro-batches.
    sync.sum_stats(step_terms, step_tokens);
    sync.finish();
    add_load(window_load, step_terms.expert_tokens);
    window_tokens += step_tokens;
    const double grad_norm = clip_grad_norm(trainable, o.max_grad_norm);
    // Checked before the update: a NaN/Inf would reach every weight and the next checkpoint.
    if (!std::isfinite(step_terms.total) || !std::isfinite(grad_norm)) {
      const bool loss_bad = !std::isfinite(step_terms.total);
      const double bad = loss_bad ? step_terms.total : grad_norm;
      fail(o.out, std::string(loss_bad ? "loss" : "gradient norm") + " became " +
                      (std::isnan(bad) ? "NaN" : bad > 0 ? "+Inf" : "-Inf") + " at step " +
                      std::to_string(state.step + 1) + last_good() + "; hint: lower --lr");
    }
    const double lr = schedule.at(state.step);
    adam.step(static_cast<float>(lr));
    ++state.step;
    const double this_step = std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
    step_seconds += this_step;
    window_step_seconds += this_step;
    window_loss += step_terms.total;
    for (const auto& [k, v] : step_terms.terms) window_terms[k] += v;
    ++window_steps;
    result.final_loss = step_terms.total;

    const bool do_eval = state.step % eval_every == 0 || state.step == total_steps;
    const bool do_log = state.step % o.log_every == 0 || do_eval;
    nlohmann::json line;
    if (do_log) {
      const auto now = std::chrono::steady_clock::now();
      const double secs = std::chrono::duration<double>(now - window_start).count();
      line = {{"step", state.step},
              {"epoch", static_cast<double>(state.step) / steps_per_epoch},
              {"lr", lr},
              {"loss", window_loss / window_steps},
              {"grad_norm", grad_norm},
              {"tokens_per_second", secs > 0 ? window_tokens / secs : 0.0}};
      for (const auto& [k, v] : window_terms) line["loss_" + k] = v / window_steps;
      if (comm.size() > 1 && window_step_seconds > 0) {  // shares of the step time blocked in allreduces
        const double meet = sync.meet_seconds() - window_meet_start, wait = sync.wait_seconds() - window_wait_start;
        line["allreduce_wait"] = (meet + wait) / window_step_seconds;  // in all
        line["gradient_wait"] = wait / window_step_seconds;            // after the ranks met
      }
      window_meet_start = sync.meet_seconds();
      window_wait_start = sync.wait_seconds();
      window_step_seconds = 0;
      if (!window_load.empty()) line["expert_load"] = load_fractions(window_load);
      window_load.clear();
      if (o.capacity_factor > 0 && window_routed > 0)
        line["drop_rate"] = static_cast<double>(window_dropped) / static_cast<double>(window_routed);
      window_routed = window_dropped = 0;
      run_tokens += window_tokens;
      window_start = now;
      window_tokens = 0;
      window_loss = 0;
      window_steps = 0;
      window_terms.clear();
    }
    if (do_eval && (root || !dev_eval_in.fn)) {  // the default evaluation needs every rank
      const auto values = dev_eval.fn(model);
      for (const auto& [k, v] : values) line["dev_" + k] = v;
      const auto found = values.find(dev_eval.metric);
      if (found == values.end())
        fail(o.dev, "--metric " + dev_eval.metric + " is not a metric of this model's task (" +
                        task_name(model.config.task) + ")");
      const double value = found->second;
      // The first evaluation is the best so far whatever its value (a loss may exceed any start).
      if (state.best_step < 0 || (dev_eval.lower_is_better ? value < state.best_metric : value > state.best_metric)) {
        state.best_metric = value;
        state.best_step = state.step;
        if (root) save_best_model(o.out, model, vocab, do_lower_case, data.tokenizer_files);
      }
    }
    if (do_log && root) metrics << line.dump() << "\n" << std::flush;
    if (root && (state.step % save_every == 0 || state.step == total_steps)) save_checkpoint(o.out, trainable, adam, state);
    std::ostringstream extra;
    extra.precision(4);
    extra << "loss " << step_terms.total;
    if (state.best_step >= 0) extra << ", best " << dev_eval.metric << " " << state.best_metric;
    progress.update(state.step - first_step, extra.str());
    // A signal on any rank stops every rank after the same step.
    if (const int sig = static_cast<int>(comm.size() > 1 ? comm.allreduce_max(stop.received()) : stop.received());
        sig && state.step < total_steps) {
      if (root) save_checkpoint(o.out, trainable, adam, state);
      fail(o.out, std::string("stopped by ") + StopSignal::name(sig) + " after step " + std::to_string(state.step) +
                      " of " + std::to_string(total_steps) + "; checkpoint saved, continue with --resume " + o.out);
    }
  }
  progress.finish();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
  result.steps = state.step;
  result.best_metric = state.best_metric;
  result.best_step = state.best_step;
  result.tokens_per_second = secs > 0 ? static_cast<double>(run_tokens) / secs : 0;
  if (comm.size() > 1 && root && step_seconds > 0) {
    const double steps = static_cast<double>(std::max<int64_t>(1, state.step - first_step));
    std::fprintf(stderr,
                 "data-parallel: %d ranks, allreduce_wait %.1f%% of the step time (%.3f s per step blocked in the "
                 "step's allreduces: %.3f s until the ranks met, then %.3f s for the gradient sums, started %s); "
                 "%.1f%% in the gradient sync in all (with copies); %.1f MB per step in %zu buckets\n",
                 comm.size(), 100 * (sync.meet_seconds() + sync.wait_seconds()) / step_seconds,
                 (sync.meet_seconds() + sync.wait_seconds()) / steps, sync.meet_seconds() / steps,
                 sync.wait_seconds() / steps, overlap ? "during the backward" : "after the backward",
                 100 * sync.seconds() / step_seconds, 4e-6 * static_cast<double>(sync.floats()), sync.buckets());
  }
  if (root) io::write_text_atomic(fs::path(o.out) / "DONE", "");
  return result;
}

}  // namespace moekit::distill
