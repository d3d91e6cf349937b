// `moekit run` on a tiny recipe: stamps skip finished steps, a changed input or option reruns
// that step and what depends on it, --only/--from, an interrupted train resumes, a failing step
// stops the run with its file:line.
#include <sys/wait.h>

#include <catch2/catch.hpp>

#include "tests/recipes/recipe_test_util.h"
#include "tests/support/synthetic_task.h"

namespace fs = std::filesystem;
using moekit::test::quote;
using moekit::test::run_moekit;

namespace {

struct TinyRun {
  moekit::test::TempDir tmp;
  fs::path dir, work;
  explicit TinyRun(const std::string& name) : tmp(name), dir(tmp.path), work(dir / "work") {
    moekit::test::synthetic_vocab().save(dir / "vocab.txt");
    moekit::test::write_keyword_task(dir / "train.tsv", 48, 1);
    moekit::test::write_keyword_task(dir / "dev.tsv", 16, 2);
    moekit::test::write_keyword_task(dir / "test.tsv", 16, 3);
    moekit::test::write_text(
        dir / "recipe.yaml",
        "name: tiny\n"
        "workdir: work\n"
        "data: {train: train.tsv, dev: dev.tsv, test: test.tsv}\n"
        "vocab: vocab.txt\n"
        "steps:\n"
        "  - train: {init: {hidden: 16, layers: 1, heads: 2, ffn: 32}, max-steps: 6, batch-size: 8,\n"
        "            max-seq-len: 16, save-every: 2, out: teacher}\n"
        "  - eval: {models: [teacher]}\n"
        "  - report\n");
  }
  moekit::test::CommandResult run(const std::string& extra = "") const {
    // The workdir is relative to the current directory: run from `dir`.
    return run_moekit("run " + quote(dir / "recipe.yaml") + " --set workdir=" + quote(work) + " " + extra);
  }
  std::vector<std::string> statuses() const {
    std::vector<std::string> s;
    const auto summary = moekit::test::read_json(work / "summary.json");
    for (const auto& step : summary["steps"]) s.push_back(step["status"]);
    return s;
  }
};

using Statuses = std::vector<std::string>;

}  // namespace

TEST_CASE("recipe re-run skips finished steps and redoes what changed", "[recipes]") {
  TinyRun t("moekit_test_recipe_run");
  auto r = t.run();
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(t.statuses() == Statuses{"done", "done", "done", "done"});
  CHECK(fs::exists(t.work / ".stamps/01-teacher-init.json"));
  CHECK(fs::exists(t.work / ".stamps/02-teacher.json"));
  CHECK(fs::exists(t.work / "run.log"));
  CHECK(r.output.find("report: " + (t.work / "report.html").string()) != std::string::npos);

  r = t.run();
  REQUIRE(r.status == 0);
  CHECK(t.statuses() == Statuses{"skipped", "skipped", "skipped", "skipped"});
  CHECK(r.output.find("running") == std::string::npos);

  // A new modification time alone changes nothing: content decides.
  fs::last_write_time(t.dir / "dev.tsv", fs::last_write_time(t.dir / "dev.tsv") + std::chrono::hours(1));
  r = t.run();
  CHECK(t.statuses() == Statuses{"skipped", "skipped", "skipped", "skipped"});

  // New dev data: train reads it, so train reruns, and eval and report after it; init does not.
  moekit::test::write_keyword_task(t.dir / "dev.tsv", 16, 7);
  r = t.run();
  REQUIRE(r.status == 0);
  CHECK(t.statuses() == Statuses{"skipped", "done", "done", "done"});
  CHECK(r.output.find("teacher (train): running (input changed: " + (t.dir / "dev.tsv").string()) != std::string::npos);
  CHECK(r.output.find("eval (eval): running (after teacher)") != std::string::npos);

  // An option set from the command line is an options change.
  r = t.run("--set teacher.lr=0.01");
  CHECK(t.statuses() == Statuses{"skipped", "done", "done", "done"});
  CHECK(r.output.find("teacher (train): running (options changed)") != std::string::npos);

  r = t.run("--set teacher.lr=0.01 --only eval");
  CHECK(t.statuses() == Statuses{"not run", "not run", "done", "not run"});
  r = t.run("--set teacher.lr=0.01 --from eval");
  CHECK(t.statuses() == Statuses{"not run", "not run", "done", "done"});

  // A deleted output is redone.
  fs::remove(t.work / "report.html");
  r = t.run("--set teacher.lr=0.01");
  CHECK(t.statuses() == Statuses{"skipped", "skipped", "skipped", "done"});
  CHECK(r.output.find("another moekit build") == std::string::npos);

  // A step made by another moekit binary is kept, and the run says so.
  const fs::path stamp = t.work / ".stamps/02-teacher.json";
  nlohmann::json j = moekit::test::read_json(stamp);
  REQUIRE(j.contains("moekit"));
  j["moekit"] = "another build";
  moekit::test::write_text(stamp, j.dump());
  r = t.run("--set teacher.lr=0.01");
  CHECK(t.statuses() == Statuses{"skipped", "skipped", "skipped", "skipped"});
  CHECK(r.output.find("teacher (train): skipped, up to date (made by another moekit build; --from teacher redoes it)") !=
        std::string::npos);
}

TEST_CASE("recipe resumes an interrupted training step from its checkpoint", "[recipes]") {
  TinyRun t("moekit_test_recipe_resume");
  REQUIRE(t.run().status == 0);
  // What a kill late in training leaves: the stamp still "running", a checkpoint, no DONE.
  const fs::path stamp = t.work / ".stamps/02-teacher.json";
  auto j = moekit::test::read_json(stamp);
  j["status"] = "running";
  moekit::test::write_text(stamp, j.dump());
  fs::remove(t.work / "teacher/DONE");
  const auto r = t.run();
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("teacher (train): running (interrupted, resuming from its checkpoint)") != std::string::npos);
  CHECK(r.output.find("--resume=" + (t.work / "teacher").string()) != std::string::npos);
  CHECK(fs::exists(t.work / "teacher/DONE"));
  CHECK(t.statuses() == Statuses{"skipped", "done", "done", "done"});
}

TEST_CASE("recipe stops at a failing step with its line and keeps the log", "[recipes]") {
  TinyRun t("moekit_test_recipe_fail");
  moekit::test::write_text(t.dir / "test.tsv", "label\ttext\npurple\tw1 w2\n");  // a label the model lacks
  const auto r = t.run();
  INFO(r.output);
  CHECK(r.status == 1);
  const std::string expected = "moekit: error: " + (t.dir / "recipe.yaml").string() +
                               ":8: step eval (eval) failed with exit code 1: moekit: error: ";
  CHECK(r.output.find(expected) != std::string::npos);
  CHECK(t.statuses() == Statuses{"done", "done", "failed", "pending"});
  std::ifstream log(t.work / "run.log");
  const std::string text((std::istreambuf_iterator<char>(log)), {});
  CHECK(text.find("purple") != std::string::npos);
}
