// Stamps compare content: a touched file is unchanged, an edited or missing one is not, and a
// file whose size and mtime match its old fingerprint is not read again.
#include <catch2/catch.hpp>
#include <chrono>

#include "recipes/fingerprint.h"
#include "tests/recipes/recipe_test_util.h"

namespace fs = std::filesystem;
using moekit::recipes::fingerprint;
using moekit::recipes::same_content;

TEST_CASE("fingerprints follow content, not modification times", "[recipes]") {
  const moekit::test::TempDir tmp("moekit_test_recipe_fingerprint");
  const fs::path& dir = tmp.path;
  moekit::test::write_text(dir / "model/config.json", "{}");
  moekit::test::write_text(dir / "model/model.safetensors", std::string(100000, 'x'));
  moekit::test::write_text(dir / "model/checkpoints/step-1/params.safetensors", "ignored: not top-level");
  moekit::test::write_text(dir / "data.tsv", "label\ttext\n");
  const std::vector<fs::path> paths{dir / "model", dir / "data.tsv"};
  const auto before = fingerprint(paths);
  CHECK(before.size() == 3);  // the directory counts by its top-level files
  CHECK(before.contains((dir / "model/model.safetensors").string()));

  fs::last_write_time(dir / "data.tsv", fs::last_write_time(dir / "data.tsv") + std::chrono::hours(1));
  const auto touched = fingerprint(paths, before);
  CHECK(touched != before);              // the new mtime is recorded...
  CHECK(same_content(touched, before));  // ...but the content is the same

  moekit::test::write_text(dir / "data.tsv", "label\ttext\nred\tw1\n");
  std::string what;
  CHECK_FALSE(same_content(fingerprint(paths, before), before, &what));
  CHECK(what == (dir / "data.tsv").string());

  const auto edited = fingerprint(paths);
  fs::remove(dir / "model/config.json");
  CHECK_FALSE(same_content(fingerprint(paths), edited, &what));
  CHECK(what == (dir / "model/config.json").string());
  CHECK(fingerprint({dir / "nothing"}).begin()->contains("missing"));

  // Same size and mtime: the old hash is trusted without reading (so re-runs are instant).
  auto stale = before;
  stale[(dir / "model/model.safetensors").string()]["hash"] = "feedfeedfeedfeed";
  CHECK(fingerprint({dir / "model"}, stale)[(dir / "model/model.safetensors").string()]["hash"] == "feedfeedfeedfeed");
  CHECK(moekit::recipes::hash_file(dir / "model/model.safetensors") != moekit::recipes::hash_file(dir / "data.tsv"));
}
