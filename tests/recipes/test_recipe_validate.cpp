// `moekit run --dry-run`: every kind of bad recipe is refused before anything runs, with its
// file:line; good recipes (the shipped ones too) print their plan and run nothing.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <vector>

#include "tests/recipes/recipe_test_util.h"
#include "tests/support/synthetic_task.h"

namespace fs = std::filesystem;
using moekit::test::quote;
using moekit::test::run_moekit;

namespace {

// Line numbers matter: the checks below name them.
std::vector<std::string> base_lines(const fs::path& work) {
  return {"name: v",                                                 // 1
          "workdir: " + work.string(),                               // 2
          "data: {train: train.tsv, dev: dev.tsv, test: dev.tsv}",   // 3
          "vocab: vocab.txt",                                        // 4
          "steps:",                                                  // 5
          "  - train:",                                              // 6
          "      init: {hidden: 32, layers: 1, heads: 2, ffn: 64}",  // 7
          "      epochs: 1",                                         // 8
          "      max-seq-len: 32",                                   // 9
          "      out: teacher",                                      // 10
          "  - importance: {model: teacher, out: importance.h5}",    // 11
          "  - eval: {models: [teacher]}",                           // 12
          "  - report: {}"};                                         // 13
}

struct Fixture {
  moekit::test::TempDir tmp{"moekit_test_recipe_validate"};
  fs::path dir = tmp.path;
  fs::path work = dir / "work";
  Fixture() {
    moekit::test::synthetic_vocab().save(dir / "vocab.txt");
    moekit::test::write_keyword_task(dir / "train.tsv", 40, 1);
    moekit::test::write_keyword_task(dir / "dev.tsv", 20, 2);
  }
  // The base recipe with line `line` (1-based) replaced (0 = none); returns `moekit run` output.
  moekit::test::CommandResult dry_run(int line = 0, const std::string& text = "", const std::string& extra = "") {
    auto lines = base_lines(work);
    if (line > 0) lines[static_cast<size_t>(line - 1)] = text;
    std::string yaml;
    for (const auto& l : lines) yaml += l + "\n";
    moekit::test::write_text(dir / "recipe.yaml", yaml);
    return run_moekit("run " + quote(dir / "recipe.yaml") + " --dry-run " + extra);
  }
  std::string at(int line) const {
    return "moekit: error: " + (dir / "recipe.yaml").string() + ":" + std::to_string(line) + ": ";
  }
};

}  // namespace

TEST_CASE("recipe dry run prints the plan and runs nothing", "[recipes]") {
  Fixture f;
  const auto r = f.dry_run();
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("[1/5] teacher-init (init): run - not run yet") != std::string::npos);
  CHECK(r.output.find("[2/5] teacher (train): run - not run yet") != std::string::npos);
  CHECK(r.output.find("moekit train --epochs=1 --max-seq-len=32 --out=" + (f.work / "teacher").string()) !=
        std::string::npos);
  CHECK(r.output.find("moekit importance --model=" + (f.work / "teacher").string()) != std::string::npos);
  CHECK(r.output.find("--data=" + (f.dir / "train.tsv").string()) !=
        std::string::npos);  // importance defaults to data.train
  CHECK(r.output.find("moekit eval --model=" + (f.work / "teacher").string() +
                      " --data=" + (f.dir / "dev.tsv").string()) != std::string::npos);
  CHECK(r.output.find("dry run: nothing was run") != std::string::npos);
  CHECK_FALSE(fs::exists(f.work));

  const auto set = f.dry_run(0, "", "--set teacher.epochs=2 --set train.init.layers=3");
  CHECK(set.output.find("moekit train --epochs=2 ") != std::string::npos);
  CHECK(set.output.find("--set") == std::string::npos);
}

TEST_CASE("recipe errors: unknown keys and kinds with did-you-mean, at their line", "[recipes]") {
  Fixture f;
  auto r = f.dry_run(8, "      epoch: 1");
  CHECK(r.status == 1);
  CHECK(r.output == f.at(8) + "unknown key \"epoch\" in step train (did you mean \"epochs\"?)\n");
  r = f.dry_run(8, "      batch_sise: 1");
  CHECK(r.output == f.at(8) + "unknown key \"batch_sise\" in step train (did you mean \"batch-size\"?)\n");
  r = f.dry_run(11, "  - importanse: {model: teacher, out: importance.h5}");
  CHECK(r.output.rfind(f.at(11) + "unknown step kind \"importanse\" (did you mean \"importance\"?)", 0) == 0);
  r = f.dry_run(7, "      init: {hiden: 32, layers: 1, heads: 2, ffn: 64}");
  CHECK(r.output == f.at(7) + "unknown key \"hiden\" in init (did you mean \"hidden\"?)\n");
  r = f.dry_run(1, "nme: v");
  CHECK(r.output == f.at(1) + "unknown key \"nme\" (did you mean \"name\"?)\n");
  r = f.dry_run(8, "      resume: teacher");
  CHECK(r.output.rfind(f.at(8) + "resume is managed by the runner", 0) == 0);
}

TEST_CASE("recipe errors: wrong types, ranges and required options, at their line", "[recipes]") {
  Fixture f;
  auto r = f.dry_run(8, "      epochs: three");
  CHECK(r.status == 1);
  CHECK(r.output == f.at(8) + "epochs: expected an integer, got \"three\" in step train\n");
  r = f.dry_run(8, "      lr: fast");
  CHECK(r.output == f.at(8) + "lr: expected a number, got \"fast\" in step train\n");
  r = f.dry_run(8, "      epochs: [1, 2]");
  CHECK(r.output == f.at(8) + "epochs: expected one value, got a list in step train\n");
  r = f.dry_run(8, "      epochs: {a: 1}");
  CHECK(r.output == f.at(8) + "epochs: expected a value, got a map\n");
  r = f.dry_run(7, "      init: {hidden: big, layers: 1, heads: 2, ffn: 64}");
  CHECK(r.output == f.at(7) + "init.hidden: expected a non-negative integer, got \"big\"\n");
  r = f.dry_run(11, "  - importance: {model: teacher}");
  CHECK(r.output == f.at(11) + "--out is required (recipe key out) in step importance\n");
  r = f.dry_run(12, "  - bench: {models: [teacher], reps: 0}");
  CHECK(r.output.rfind(f.at(12) + "--reps: Value 0 not in range", 0) == 0);
  r = f.dry_run(12, "  - bench: {models: [teacher], train: maybe}");
  CHECK(r.output == f.at(12) + "train: expected true or false, got \"maybe\" in step bench\n");
}

TEST_CASE("recipe errors: missing files and references to steps that do not exist", "[recipes]") {
  Fixture f;
  auto r = f.dry_run(3, "data: {train: trian.tsv, dev: dev.tsv, test: dev.tsv}");
  CHECK(r.status == 1);
  CHECK(r.output == f.at(3) + "no such file: " + (f.dir / "trian.tsv").string() + "\n");
  r = f.dry_run(11, "  - importance: {model: teachr, out: importance.h5}");
  CHECK(r.output == f.at(11) +
                        "model: \"teachr\" in step importance is no earlier step's output, data set or existing file"
                        " (did you mean \"teacher\"?)\n");
  r = f.dry_run(12, "  - eval: {models: [teacher, report]}");
  CHECK(r.output ==
        f.at(12) + "models: \"report\" is the output of a later step (report); steps see only earlier outputs\n");
  r = f.dry_run(11, "  - importance: {model: teacher, data: nowhere.tsv, out: importance.h5}");
  CHECK(r.output.rfind(f.at(11) + "data: \"nowhere.tsv\" in step importance is no earlier step's output", 0) == 0);
  r = f.dry_run(4, "vocab: vocab.text");
  CHECK(r.output == f.at(4) + "no such file: " + (f.dir / "vocab.text").string() + "\n");
  r = f.dry_run(0, "", "--from evl");
  CHECK(r.output == "moekit: error: --from evl: no such step (did you mean \"eval\"?)\n");
}

TEST_CASE("shipped recipes pass the dry run", "[recipes]") {
  const fs::path root = fs::path(MOEKIT_TEST_DATA).parent_path().parent_path();
  const moekit::test::TempDir tmp("moekit_test_recipe_shipped");
  const fs::path& dir = tmp.path;
  // The README's demo: WordNet, pretrained teacher, then the MoEBERT pipeline.
  auto demo =
      run_moekit("run " + quote(root / "recipes/demo.yaml") + " --dry-run --set workdir=" + quote(dir / "demo"));
  INFO(demo.output);
  CHECK(demo.status == 0);
  // The pretrain step's inline init has no labels; the teacher fine-tunes the pretrained model.
  CHECK(demo.output.find("moekit pretrain --train=") != std::string::npos);
  CHECK(demo.output.find("--labels-from") == std::string::npos);
  CHECK(demo.output.find("moekit train --model=" + (dir / "demo/pretrained").string()) != std::string::npos);
  CHECK(demo.output.find("moekit export --model=" + (dir / "demo/moe").string() + " --dtype=int8") !=
        std::string::npos);
  CHECK(demo.output.find("--format=onnx") != std::string::npos);

  auto fortunes = run_moekit("run " + quote(root / "recipes/fortunes-demo.yaml") + " --dry-run --set workdir=" +
                             quote(dir / "fortunes"));
  INFO(fortunes.output);
  CHECK(fortunes.status == 0);
  CHECK(fortunes.output.find("moekit export --model=" + (dir / "fortunes/moe").string() + " --dtype=int8") !=
        std::string::npos);

  auto widenet = run_moekit("run " + quote(root / "recipes/widenet-share.yaml") + " --dry-run --set workdir=" +
                            quote(dir / "widenet"));
  INFO(widenet.output);
  CHECK(widenet.status == 0);
  CHECK(widenet.output.find("--share-groups=0-1,2-3 --share-attention=mean --router=gate --top-k=2") !=
        std::string::npos);

  auto ner = run_moekit("run " + quote(root / "recipes/ner-demo.yaml") + " --dry-run --set workdir=" + quote(dir / "ner"));
  INFO(ner.output);
  CHECK(ner.status == 0);
  CHECK(ner.output.find("--labels-from=" + (dir / "ner/data/train.conll").string()) != std::string::npos);
  CHECK(ner.output.find("moekit export --model=" + (dir / "ner/moe").string() + " --dtype=int8") != std::string::npos);

  auto qa = run_moekit("run " + quote(root / "recipes/qa-demo.yaml") + " --dry-run --set workdir=" + quote(dir / "qa"));
  INFO(qa.output);
  CHECK(qa.status == 0);
  CHECK(qa.output.find("--dev=" + (dir / "qa/data/dev.json").string()) != std::string::npos);
  moekit::test::write_text(dir / "squad.json",
                           "{\"data\": [{\"paragraphs\": [{\"context\": \"so boring.\", \"qas\": [{\"id\": \"1\", "
                           "\"question\": \"how?\", \"answers\": [{\"text\": \"boring\", \"answer_start\": 3}]}]}]}]}");
  auto squad = run_moekit("run " + quote(root / "recipes/moebert-squad.yaml") + " --dry-run --set workdir=" +
                          quote(dir / "squad") + " --set checkpoint=" +
                          quote(fs::path(MOEKIT_TEST_DATA) / "golden/bert_tiny_noclf") + " --set train=" +
                          quote(dir / "squad.json") + " --set dev=" + quote(dir / "squad.json"));
  INFO(squad.output);
  CHECK(squad.status == 0);
  CHECK(squad.output.find("--problem-type=question_answering") != std::string::npos);
  CHECK(squad.output.find("--experts=4 --expert-size=768 --shared=512 --router=hash") != std::string::npos);

  // MoEBERT's setting on a user's own checkpoint: here the tiny golden BERT and a small TSV.
  moekit::test::write_text(dir / "glue.tsv",
                           "label\ttext\nneg\tso boring.\npos\tThe Movie was GREAT!\nneu\tit was a film\n");
  const fs::path bert = fs::path(MOEKIT_TEST_DATA) / "golden/bert_tiny";
  auto moebert = run_moekit("run " + quote(root / "recipes/moebert-bert-base.yaml") +
                            " --dry-run --set workdir=" + quote(dir / "moebert") + " --set checkpoint=" + quote(bert) +
                            " --set train_tsv=" + quote(dir / "glue.tsv") +
                            " --set dev_tsv=" + quote(dir / "glue.tsv") + " --set test_tsv=" + quote(dir / "glue.tsv"));
  INFO(moebert.output);
  CHECK(moebert.status == 0);
  CHECK(moebert.output.find("--experts=4 --expert-size=768 --shared=512 --router=hash") != std::string::npos);
  CHECK(moebert.output.find("--lambda=5") != std::string::npos);
  // Without the user's paths the dry run names what is missing.
  auto missing = run_moekit("run " + quote(root / "recipes/moebert-bert-base.yaml") +
                            " --dry-run --set workdir=" + quote(dir / "moebert"));
  CHECK(missing.status == 1);
  CHECK(missing.output.find("no such file") != std::string::npos);
}

TEST_CASE("recipe launcher: a data-parallel step runs under mpirun; bad launchers are refused at their line",
          "[recipes]") {
  Fixture f;
  auto r = f.dry_run(11, "  - importance: {model: teacher, out: importance.h5, launcher: {mpirun: {np: 2, hosts: [a, b], "
                         "args: [--bind-to, none]}}}");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("$ mpirun -np 2 --host a,b --bind-to none moekit importance --model=") != std::string::npos);
  CHECK(r.output.find("$ mpirun -np 2 --host a,b --bind-to none moekit eval") == std::string::npos);
  r = f.dry_run(11, "  - importance: {model: teacher, out: importance.h5, launcher: {command: [srun, --mpi=pmix]}}");
  CHECK(r.output.find("$ srun --mpi=pmix moekit importance --model=") != std::string::npos);
  r = f.dry_run(11, "  - importance: {model: teacher, out: importance.h5, launcher: {mpirun: {np: 0}}}");
  CHECK(r.output == f.at(11) + "launcher.mpirun.np: expected a positive integer, got \"0\"\n");
  r = f.dry_run(11, "  - importance: {model: teacher, out: importance.h5, launcher: {mpirun: {nps: 2}}}");
  CHECK(r.output == f.at(11) + "unknown key \"nps\" in launcher.mpirun (did you mean \"np\"?)\n");
  r = f.dry_run(11, "  - importance: {model: teacher, out: importance.h5, launcher: {mpiexec: {np: 2}}}");
  CHECK(r.output.rfind(f.at(11) + "unknown launcher \"mpiexec\"", 0) == 0);
  r = f.dry_run(12, "  - eval: {models: [teacher], launcher: {mpirun: {np: 2}}}");
  CHECK(r.output.rfind(f.at(12) + "launcher: step eval does not run data-parallel", 0) == 0);
  // MOEKIT_LAUNCHER: every data-parallel step without its own launcher, nothing else.
  REQUIRE(f.dry_run().status == 0);  // the base recipe again
  r = run_moekit("run " + quote(f.dir / "recipe.yaml") + " --dry-run", "MOEKIT_LAUNCHER='mpirun -np 3'");
  CHECK(r.output.find("$ mpirun -np 3 moekit train ") != std::string::npos);
  CHECK(r.output.find("$ mpirun -np 3 moekit importance ") != std::string::npos);
  CHECK(r.output.find("$ mpirun -np 3 moekit eval") == std::string::npos);
  CHECK(r.output.find("$ mpirun -np 3 moekit init") == std::string::npos);
}
