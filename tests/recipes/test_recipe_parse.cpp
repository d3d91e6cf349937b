// Recipe parsing without the CLI: vars, --set overrides, step names, and errors carrying file:line.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "model/error.h"
#include "recipes/recipe.h"
#include "tests/recipes/recipe_test_util.h"

namespace fs = std::filesystem;
using moekit::recipes::load_recipe;

namespace {

const moekit::test::TempDir kDir("moekit_test_recipe_parse");

fs::path write_recipe(const std::string& name, const std::string& text) {
  std::ofstream(kDir.path / name) << text;
  return kDir.path / name;
}

std::string error_of(const fs::path& file, const std::vector<std::string>& sets = {}) {
  try {
    load_recipe(file, sets);
  } catch (const moekit::Error& e) {
    return e.what();
  }
  return "";
}

const char* kRecipe =
    "name: t\n"                          // 1
    "workdir: w\n"                       // 2
    "vars:\n"                            // 3
    "  epochs: 3\n"                      // 4
    "  out: teacher\n"                   // 5
    "steps:\n"                           // 6
    "  - train:\n"                       // 7
    "      epochs: ${epochs}\n"          // 8
    "      init: {hidden: 32}\n"         // 9
    "      out: ${out}-x\n"              // 10
    "  - eval: {models: [teacher-x]}\n"  // 11
    "  - eval: {models: [teacher-x]}\n"  // 12
    "  - report\n";                      // 13

}  // namespace

TEST_CASE("recipe vars are substituted and steps named after their outputs", "[recipes]") {
  const auto r = load_recipe(write_recipe("ok.yaml", kRecipe));
  REQUIRE(r.steps.size() == 4);
  CHECK(r.steps[0].kind == "train");
  CHECK(r.steps[0].name == "teacher-x");
  CHECK(r.steps[0].options.find("epochs")->text == "3");
  CHECK(r.steps[0].options.find("epochs")->loc == r.file.string() + ":8");
  CHECK(r.steps[1].name == "eval");
  CHECK(r.steps[2].name == "eval-2");
  CHECK(r.steps[3].kind == "report");
  CHECK(r.steps[3].loc == r.file.string() + ":13");
}

TEST_CASE("recipe --set overrides vars, step options, nested init keys and data", "[recipes]") {
  const auto r = load_recipe(write_recipe("ok.yaml", kRecipe), {"epochs=1", "teacher-x.lr=0.001", "train.init.layers=2",
                                                                "data.test=t.tsv", "3.batch_size=8"});
  CHECK(r.steps[0].options.find("epochs")->text == "1");
  CHECK(r.steps[0].options.find("lr")->text == "0.001");
  CHECK(r.steps[0].options.find("lr")->loc == "--set teacher-x.lr");
  CHECK(r.steps[0].options.find("init")->find("layers")->text == "2");
  CHECK(r.steps[0].options.find("init")->find("hidden")->text == "32");
  CHECK(r.root.find("data")->find("test")->text == "t.tsv");
  CHECK(r.steps[2].options.find("batch-size")->text == "8");  // batch_size and batch-size are one key
  const auto list = load_recipe(write_recipe("ok.yaml", kRecipe), {"eval-2.models=[a, b]"});
  CHECK(list.steps[2].options.find("models")->items.size() == 2);
}

TEST_CASE("recipe errors name the file and line", "[recipes]") {
  const auto bad_top = write_recipe("top.yaml", "name: t\nworkdir: w\nstep:\n  - train: {}\n");
  CHECK(error_of(bad_top) == bad_top.string() + ":3: unknown key \"step\" (did you mean \"steps\"?)");

  const auto bad_var =
      write_recipe("var.yaml", "workdir: w\nvars: {epochs: 3}\nsteps:\n  - train: {epochs: \"${epoch}\"}\n");
  CHECK(error_of(bad_var).find(bad_var.string() + ":4: unknown variable ${epoch} (did you mean \"epochs\"?)") == 0);

  const auto two_kinds = write_recipe("two.yaml", "workdir: w\nsteps:\n  - train: {}\n    eval: {}\n");
  CHECK(error_of(two_kinds).find(two_kinds.string() + ":3: a step is one kind") == 0);

  const auto not_map = write_recipe("notmap.yaml", "workdir: w\nsteps:\n  - train: 3\n");
  CHECK(error_of(not_map).find(not_map.string() + ":3: step train: expected a map of options") == 0);

  const auto dup = write_recipe("dup.yaml", "workdir: w\nworkdir: v\nsteps: [report]\n");
  CHECK(error_of(dup).find(dup.string() + ":2: duplicate key \"workdir\"") == 0);

  const auto syntax = write_recipe("syntax.yaml", "workdir: w\nsteps:\n  - train: {epochs: 3\n");
  CHECK(error_of(syntax).find(syntax.string() + ":") == 0);

  const auto ok = write_recipe("ok.yaml", kRecipe);
  CHECK(error_of(ok, {"epoch=2"}) ==
        "--set epoch: no variable \"epoch\" (did you mean \"epochs\"?); hint: options are set as STEP.KEY=VALUE");
  CHECK(error_of(ok, {"teachr-x.lr=1"}) == "--set teachr-x.lr: no step \"teachr-x\" (did you mean \"teacher-x\"?)");
  const auto two_trains = write_recipe("trains.yaml", "workdir: w\nsteps:\n  - train: {out: a}\n  - train: {out: b}\n");
  CHECK(error_of(two_trains, {"train.lr=1"}) ==
        "--set train.lr: several steps are \"train\"; name one by its name or number");
  CHECK(error_of(ok, {"novalue"}) == "--set novalue: expected KEY=VALUE");
}

TEST_CASE("did-you-mean picks the closest key within a few edits", "[recipes]") {
  using moekit::recipes::did_you_mean;
  CHECK(moekit::recipes::edit_distance("epoch", "epochs") == 1);
  CHECK(did_you_mean("epoch", {"epochs", "eval-every", "lr"}) == " (did you mean \"epochs\"?)");
  CHECK(did_you_mean("batch_sise", {"batch-size", "seed"}) == " (did you mean \"batch-size\"?)");
  CHECK(did_you_mean("zzzzzz", {"epochs", "lr"}).empty());
  CHECK(did_you_mean("epochs", {"epochs"}).empty());  // an exact match is no suggestion
}
