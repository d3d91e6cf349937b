// importance.h5 round-trips and is checksummed like the compact export (io/h5_checksum.h).
#include <catch2/catch.hpp>
#include <fstream>

#include "compress/importance.h"
#include "model/error.h"
#include "tests/support/temp_dir.h"

using namespace moekit;
namespace fs = std::filesystem;

TEST_CASE("importance files round-trip and refuse a damaged byte", "[compress][importance][checksum]") {
  const fs::path dir = test::scratch_dir("importance_file");
  compress::Importance imp;
  imp.examples = 12;
  imp.layers = {{0.5, 1.5, 2.5}, {}, {3.0, 0.25}};
  write_importance(dir / "imp.h5", imp, "model", "data.tsv");
  const compress::Importance back = compress::read_importance(dir / "imp.h5");
  CHECK(back.verified);
  CHECK(back.examples == 12);
  REQUIRE(back.layers.size() == 3);
  CHECK(back.layers[0] == std::vector<double>{0.5, 1.5, 2.5});
  CHECK(back.layers[1].empty());
  CHECK(back.layers[2] == std::vector<double>{3.0, 0.25});

  std::fstream f(dir / "imp.h5", std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(700);
  const char byte = char(f.get());
  f.seekp(700);
  f.put(char(~byte));  // always a change
  f.close();
  CHECK_THROWS_WITH(compress::read_importance(dir / "imp.h5"),
                    Catch::Contains("imp.h5: file is corrupt or truncated (checksum: hash mismatch)"));
}
