// Compact HDF5 checkpoint (DESIGN 5, STYLE 2.6): round trips per dtype, aliases stored once, a
// plain-HDF5 read the way h5py does it, the v1 fixture, and the corrupt-file catalogue: each
// defect gives one moekit::Error naming the file and what is wrong.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>

#include "io/compact.h"
#include "io/h5_checksum.h"
#include "io/half.h"
#include "io/hdf5.h"
#include "model/error.h"
#include "tests/support/temp_dir.h"

using namespace moekit;
using namespace moekit::io;
using Catch::Contains;

namespace {

struct TempDir {
  fs::path dir = test::unique_scratch_dir("compact");
};

Mat random_mat(Eigen::Index r, Eigen::Index c, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2, 2);
  Mat m(r, c);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = u(rng);
  return m;
}

Tensor raw(DType dtype, std::vector<int64_t> shape, std::vector<uint8_t> data) {
  return Tensor{dtype, std::move(shape), std::move(data)};
}

// Deterministic (the v1 fixture is written from it): every dtype, scalar and empty tensors, an int8
// tensor with scales, and two aliases, one of them to the int8 tensor.
CompactModel sample_model() {
  CompactModel m;
  m.config_json = R"({"hidden_size": 4, "num_hidden_layers": 2, "vocab_size": 6})";
  m.vocab = {"[PAD]", "[UNK]", "hello", "##ing", "h\xC3\xA9llo", ""};
  m.do_lower_case = false;
  Mat emb(6, 4), bias(1, 4);
  for (Eigen::Index i = 0; i < emb.size(); ++i) emb.data()[i] = 0.25f * float(i) - 2.0f;
  bias << 0.5f, -0.25f, 1e-3f, 3.0f;
  m.tensors["bert.embeddings.word_embeddings.weight"] = mat_to_tensor(emb, DType::F32, false);
  m.tensors["bert.pooler.dense.bias"] = mat_to_tensor(bias, DType::F32, true);
  m.tensors["bert.pooler.dense.weight"] = mat_to_tensor(emb.topRows(4), DType::F16, false);
  m.tensors["classifier.weight"] = mat_to_tensor(emb.topRows(2), DType::BF16, false);
  const std::string w8 = "bert.encoder.layer.0.intermediate.dense.weight";
  m.tensors[w8] = raw(DType::I8, {3, 2}, {0x81 + 0, 0, 127, 1, 0, 0});  // 0x81 = -127
  m.scales[w8] = mat_to_tensor((Mat(1, 3) << 0.5f, 0.125f, 0.0f).finished(), DType::F32, true);
  m.tensors["bert.encoder.layer.0.moe.hash_table"] = int32_tensor({3, -1, 7}, {3});
  m.tensors["bert.embeddings.position_ids"] = raw(DType::I64, {1, 2}, std::vector<uint8_t>(16, 0));
  m.tensors["mask"] = raw(DType::U8, {2}, {0, 255});
  m.tensors["scalar"] = mat_to_tensor(Mat::Constant(1, 1, 7.5f), DType::F32, true);
  m.tensors["scalar"].shape = {};
  m.tensors["empty"] = raw(DType::F32, {0, 4}, {});
  m.aliases["bert.encoder.layer.1.intermediate.dense.weight"] = w8;
  m.aliases["cls.predictions.decoder.weight"] = "bert.embeddings.word_embeddings.weight";
  return m;
}

void require_same(const CompactModel& a, const CompactModel& b) {
  CHECK(a.config_json == b.config_json);
  CHECK(a.vocab == b.vocab);
  CHECK(a.do_lower_case == b.do_lower_case);
  CHECK(a.aliases == b.aliases);
  for (const auto* pair : {&a.tensors, &a.scales}) {
    const auto& other = pair == &a.tensors ? b.tensors : b.scales;
    REQUIRE(pair->size() == other.size());
    for (const auto& [name, t] : *pair) {
      INFO(name);
      REQUIRE(other.count(name));
      CHECK(other.at(name).dtype == t.dtype);
      CHECK(other.at(name).shape == t.shape);
      CHECK(other.at(name).data == t.data);
    }
  }
}

// Opens a written file read-write through the HDF5 C API and applies an edit.
// Changes a file through libhdf5, then re-seals its checksum: the defect reaches the checks that
// run after the checksum (as in a file written wrongly by a moekit bug, or by another tool).
void edit(const fs::path& p, const std::function<void(hid_t)>& f) {
  {
    h5::File file = h5::open_file(p, true);
    f(file);
    file.close(p, "the file");
  }
  seal_hdf5_checksum(p);
}

void delete_link(hid_t loc, const std::string& name) { REQUIRE(H5Ldelete(loc, name.c_str(), H5P_DEFAULT) >= 0); }

const std::string kW8 = "bert.encoder.layer.0.intermediate.dense.weight";

}  // namespace

TEST_CASE("compact checkpoint round-trips every dtype, vocab, config and aliases bit for bit", "[compact]") {
  TempDir tmp;
  const fs::path p = tmp.dir / "model.h5";
  const CompactModel m = sample_model();
  write_compact(p, m);
  REQUIRE(is_compact_file(p));
  require_same(m, read_compact(p));
  // Random fp32 data too: exact.
  CompactModel r = m;
  r.tensors["big"] = mat_to_tensor(random_mat(300, 70, 1), DType::F32, false);
  write_compact(p, r);
  require_same(r, read_compact(p));
  // Only the final file is left: the temp sibling was renamed.
  CHECK(std::distance(fs::directory_iterator(tmp.dir), fs::directory_iterator()) == 1);
}

TEST_CASE("fp16 storage stays within 2^-11 relative (2^-25 absolute below the normal range)", "[compact]") {
  TempDir tmp;
  Mat w = random_mat(40, 33, 2);
  for (Eigen::Index c = 0; c < w.cols(); ++c) w(0, c) = std::ldexp(w(1, c), -int(c));  // down into subnormals
  CompactModel m = sample_model();
  m.tensors["w"] = mat_to_tensor(w, DType::F16, false);
  write_compact(tmp.dir / "h.h5", m);
  const Mat back = tensor_to_mat(read_compact(tmp.dir / "h.h5").tensors.at("w"), "w");
  for (Eigen::Index i = 0; i < w.size(); ++i) {
    const double a = w.data()[i], b = back.data()[i];
    const double budget = std::abs(a) >= std::ldexp(1.0, -14) ? std::ldexp(std::abs(a), -11) : std::ldexp(1.0, -25);
    REQUIRE(std::abs(a - b) <= budget);
  }
}

TEST_CASE("aliased tensors are stored once, as hard links, and read back as aliases", "[compact]") {
  TempDir tmp;
  CompactModel m = sample_model();
  m.aliases.clear();
  m.tensors["shared"] = mat_to_tensor(random_mat(128, 128, 3), DType::F32, false);  // 64 KiB, barely compressible
  CompactModel copied = m, aliased = m;
  copied.tensors["copy"] = m.tensors["shared"];
  aliased.aliases["copy"] = "shared";
  write_compact(tmp.dir / "copied.h5", copied);
  write_compact(tmp.dir / "aliased.h5", aliased);
  CHECK(fs::file_size(tmp.dir / "aliased.h5") + 40000 < fs::file_size(tmp.dir / "copied.h5"));
  {
    const fs::path p = tmp.dir / "aliased.h5";
    const h5::File file = h5::open_file(p);
    const h5::Group weights = h5::open_group(file, "weights", p);
    CHECK(h5::same_object(weights, "copy", "shared", p));
    CHECK_FALSE(h5::same_object(weights, "copy", "bert.pooler.dense.bias", p));
  }
  const CompactModel back = read_compact(tmp.dir / "aliased.h5");
  CHECK(back.aliases == aliased.aliases);
  CHECK(back.tensors.count("copy") == 0);
  CHECK(back.tensors.at("shared").data == m.tensors.at("shared").data);
}

TEST_CASE("a compact file reads through the plain HDF5 C API the way h5py does", "[compact]") {
  TempDir tmp;
  const fs::path p = tmp.dir / "plain.h5";
  const CompactModel m = sample_model();
  write_compact(p, m);
  // Raw calls only (h5py's path), closing by hand.
  const hid_t f = H5Fopen(p.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE(f >= 0);
  auto vlen_attr = [](hid_t obj, const char* name) {
    const hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    const hid_t t = H5Aget_type(a);
    REQUIRE(H5Tis_variable_str(t) > 0);
    CHECK(H5Tget_cset(t) == H5T_CSET_UTF8);  // h5py decodes it to str
    char* s = nullptr;
    REQUIRE(H5Aread(a, t, &s) >= 0);
    std::string out(s);
    H5free_memory(s);
    H5Tclose(t);
    H5Aclose(a);
    return out;
  };
  CHECK(vlen_attr(f, "format") == "moekit");
  CHECK(vlen_attr(f, "config") == m.config_json);
  int64_t version = 0;
  const hid_t va = H5Aopen(f, "version", H5P_DEFAULT);
  REQUIRE(H5Aread(va, H5T_NATIVE_INT64, &version) >= 0);
  H5Aclose(va);
  CHECK(version == 1);

  // fp16: a 2-byte IEEE half (what h5py maps to numpy float16), chunked, shuffle then gzip 4.
  const hid_t d = H5Dopen2(f, "/weights/bert.pooler.dense.weight", H5P_DEFAULT);
  REQUIRE(d >= 0);
  CHECK(vlen_attr(d, "dtype") == "float16");
  const hid_t t = H5Dget_type(d);
  size_t spos, epos, esize, mpos, msize;
  REQUIRE(H5Tget_fields(t, &spos, &epos, &esize, &mpos, &msize) >= 0);
  CHECK(H5Tget_class(t) == H5T_FLOAT);
  CHECK(H5Tget_size(t) == 2);
  CHECK(H5Tget_order(t) == H5T_ORDER_LE);
  CHECK((spos == 15 && epos == 10 && esize == 5 && mpos == 0 && msize == 10 && H5Tget_ebias(t) == 15));
  const hid_t s = H5Dget_space(d);
  hsize_t dims[2] = {0, 0};
  CHECK(H5Sget_simple_extent_ndims(s) == 2);
  H5Sget_simple_extent_dims(s, dims, nullptr);
  CHECK((dims[0] == 4 && dims[1] == 4));
  const hid_t dcpl = H5Dget_create_plist(d);
  REQUIRE(H5Pget_nfilters(dcpl) == 2);
  unsigned flags = 0, cd[4];
  size_t ncd = 4;
  CHECK(H5Pget_filter2(dcpl, 0, &flags, &ncd, cd, 0, nullptr, nullptr) == H5Z_FILTER_SHUFFLE);
  ncd = 4;
  CHECK(H5Pget_filter2(dcpl, 1, &flags, &ncd, cd, 0, nullptr, nullptr) == H5Z_FILTER_DEFLATE);
  CHECK(cd[0] == 4);
  // Reading as native float converts through HDF5, as h5py's astype would.
  float vals[16];
  REQUIRE(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, vals) >= 0);
  CHECK(vals[0] == -2.0f);
  CHECK(vals[5] == 0.25f * 5 - 2.0f);
  H5Pclose(dcpl);
  H5Sclose(s);
  H5Tclose(t);
  H5Dclose(d);

  const hid_t q = H5Dopen2(f, ("/weights/" + kW8).c_str(), H5P_DEFAULT);
  const hid_t qt = H5Dget_type(q);
  CHECK((H5Tget_class(qt) == H5T_INTEGER && H5Tget_size(qt) == 1 && H5Tget_sign(qt) == H5T_SGN_2));
  CHECK(vlen_attr(q, "scale_dataset") == "/scales/" + kW8);
  H5Tclose(qt);
  H5Dclose(q);
  const hid_t sc = H5Dopen2(f, ("/scales/" + kW8).c_str(), H5P_DEFAULT);
  float scale[3];
  REQUIRE(H5Dread(sc, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, scale) >= 0);
  CHECK((scale[0] == 0.5f && scale[1] == 0.125f && scale[2] == 0.0f));
  H5Dclose(sc);
  CHECK(H5Fclose(f) >= 0);
}

TEST_CASE("the committed v1 fixture still reads (new code, old data)", "[compact]") {
  const fs::path fixture = fs::path(MOEKIT_TEST_DATA) / "compact" / "v1.h5";
  if (std::getenv("MOEKIT_WRITE_FIXTURES")) write_compact(fixture, sample_model());  // see README there
  require_same(sample_model(), read_compact(fixture));
}

TEST_CASE("corrupt compact files throw an Error naming the file and the defect", "[compact][corrupt]") {
  struct Defect {
    const char* name;
    std::function<void(const fs::path&)> apply;
    std::string phrase;
  };
  auto bytes = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  auto put = [](const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary | std::ios::trunc) << s; };
  auto set_str = [](const std::string& obj, const std::string& attr, const std::string& v) {
    return [=](const fs::path& p) { edit(p, [&](hid_t f) {
      const hid_t o = H5Oopen(f, obj.c_str(), H5P_DEFAULT);
      h5::write_string_attribute(o, attr, v, p);
      H5Oclose(o);
    }); };
  };
  auto set_int = [](const std::string& attr, int64_t v) {
    return [=](const fs::path& p) { edit(p, [&](hid_t f) { h5::write_int_attribute(f, attr, v, p); }); };
  };
  auto remove = [](const std::string& link) {
    return [=](const fs::path& p) { edit(p, [&](hid_t f) { delete_link(f, link); }); };
  };
  auto set_scale = [](std::vector<float> s) {
    return [=](const fs::path& p) { edit(p, [&](hid_t f) {
      delete_link(f, "/scales/" + kW8);
      const h5::Group g = h5::open_group(f, "scales", p);
      h5::write_dataset(g, kW8, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {int64_t(s.size())}, s.data(), p);
    }); };
  };
  const std::string w = "/weights/bert.embeddings.word_embeddings.weight";
  const std::vector<Defect> defects = {
      {"truncated", [&](const fs::path& p) { const auto b = bytes(p); put(p, b.substr(0, b.size() / 2)); },
       "file is corrupt or truncated (checksum: the file is truncated or extended"},
      {"extended", [&](const fs::path& p) { put(p, bytes(p) + "x"); }, "file is corrupt or truncated (checksum"},
      {"random bytes", [&](const fs::path& p) {
         std::mt19937 rng(5);
         std::string b(4096, '\0');
         for (auto& c : b) c = char(rng());
         put(p, b);
       }, "file is corrupt or truncated (checksum: no checksum block"},
      {"empty", [&](const fs::path& p) { put(p, ""); }, "file is corrupt or truncated (checksum"},
      {"truncated legacy file", [&](const fs::path& p) {  // no checksum block: libhdf5's own error
         const auto b = bytes(p).substr(kChecksumBlockBytes);
         put(p, b.substr(0, b.size() / 2));
       }, "not a readable HDF5 file (truncated or corrupt?)"},
      {"newer checksum block", [&](const fs::path& p) {
         auto b = bytes(p);
         b[22] = '9';  // "moekit-hdf5-checksum v9 ..."
         put(p, b);
       }, "written by a newer moekit (checksum block"},
      {"damaged block padding", [&](const fs::path& p) {
         auto b = bytes(p);
         b[400] = 'x';
         put(p, b);
       }, "damaged checksum block (byte 400)"},
      {"missing", [](const fs::path& p) { fs::remove(p); }, "no such file"},
      {"wrong format", set_str("/", "format", "keras"), "not a moekit compact checkpoint (format attribute is \"keras\""},
      {"no format", [](const fs::path& p) { edit(p, [](hid_t f) { REQUIRE(H5Adelete(f, "format") >= 0); }); },
       "no 'format' attribute"},
      {"newer version", set_int("version", 2), "written by a newer moekit (format version 2 > 1); upgrade moekit"},
      {"version 0", set_int("version", 0), "invalid format version 0"},
      {"version as text", set_str("/", "version", "1"), "attribute 'version' of the root group must be an integer"},
      {"no config", [](const fs::path& p) { edit(p, [](hid_t f) { REQUIRE(H5Adelete(f, "config") >= 0); }); },
       "missing 'config' attribute"},
      {"config not JSON", set_str("/", "config", "{hidden"), "'config' attribute is not a JSON object"},
      {"no vocab", remove("/vocab"), "missing group vocab"},
      {"unknown dtype", set_str(w, "dtype", "float64"), "unknown dtype \"float64\""},
      {"dtype disagrees", set_str(w, "dtype", "int8"), "dtype attribute says int8 but the dataset stores 32-bit float"},
      {"no dtype", [&](const fs::path& p) { edit(p, [&](hid_t f) { REQUIRE(H5Adelete_by_name(f, w.c_str(), "dtype", H5P_DEFAULT) >= 0); }); },
       "has no dtype attribute"},
      {"alias target missing", remove(w),
       "alias cls.predictions.decoder.weight refers to missing tensor bert.embeddings.word_embeddings.weight"},
      {"int8 without scales", remove("/scales/" + kW8), "int8 tensor " + kW8 + " has no scales"},
      {"scale too long", set_scale({1, 1, 1, 1}), "scale of " + kW8 + " has 4 entries, expected 3"},
      {"negative scale", set_scale({1, -1, 1}), "row 1 has scale -1.000000 (must be finite and >= 0)"},
      {"nan scale", set_scale({1, 1, NAN}), "(must be finite and >= 0)"},
  };
  TempDir tmp;
  for (const auto& d : defects) {
    DYNAMIC_SECTION(d.name) {
      const fs::path p = tmp.dir / (std::string("defect_") + std::to_string(&d - defects.data()) + ".h5");
      write_compact(p, sample_model());
      d.apply(p);
      REQUIRE_THROWS_AS(read_compact(p), Error);
      REQUIRE_THROWS_WITH(read_compact(p), Contains(p.filename().string()) && Contains(d.phrase));
    }
  }
}

TEST_CASE("write_compact refuses inconsistent models and leaves the old file intact", "[compact][corrupt]") {
  TempDir tmp;
  const fs::path p = tmp.dir / "keep.h5";
  write_compact(p, sample_model());
  struct Bad {
    std::function<void(CompactModel&)> apply;
    std::string phrase;
  };
  const std::vector<Bad> bad = {
      {[](CompactModel& m) { m.scales.erase(kW8); }, "int8 tensor " + kW8 + " has no scales"},
      {[](CompactModel& m) { m.scales[kW8].shape = {2}; m.scales[kW8].data.resize(8); },
       "scale of " + kW8 + " has 2 entries, expected 3"},
      {[](CompactModel& m) { m.aliases["x"] = "nope"; }, "alias x refers to missing tensor nope"},
      {[](CompactModel& m) { m.tensors["a/b"] = m.tensors["mask"]; }, "is not a valid HDF5 link name"},
      {[](CompactModel& m) { m.tensors["mask"].data.pop_back(); }, "tensor mask: U8 [2] needs 2 bytes, got 1"},
      {[](CompactModel& m) { m.scales["mask"] = m.scales[kW8]; }, "scales given for mask, which is not an int8 tensor"},
      {[](CompactModel& m) { m.vocab[2] = std::string("a\0b", 3); }, "string contains a NUL byte"},  // fails mid-write
  };
  for (const auto& b : bad) {
    CompactModel m = sample_model();
    b.apply(m);
    REQUIRE_THROWS_WITH(write_compact(p, m), Contains("keep.h5") && Contains(b.phrase));
  }
  require_same(sample_model(), read_compact(p));
  CHECK(std::distance(fs::directory_iterator(tmp.dir), fs::directory_iterator()) == 1);  // no temp files left
}

TEST_CASE("is_compact_file sniffs the HDF5 signature", "[compact]") {
  TempDir tmp;
  std::ofstream(tmp.dir / "text.h5") << "hello, not hdf5 at all";
  std::ofstream(tmp.dir / "empty.h5");
  CHECK_FALSE(is_compact_file(tmp.dir / "text.h5"));
  CHECK_FALSE(is_compact_file(tmp.dir / "empty.h5"));
  CHECK_FALSE(is_compact_file(tmp.dir / "missing.h5"));
  // The signature after a 512-byte user block counts too.
  std::string block(512, ' ');
  std::ofstream(tmp.dir / "ub.h5", std::ios::binary) << block << "\x89HDF\r\n\x1a\n" << block;
  CHECK(is_compact_file(tmp.dir / "ub.h5"));
}

TEST_CASE("a compact file written by h5py reads (fixed-length strings, int32 version, big-endian)", "[compact]") {
  const CompactModel m = read_compact(fs::path(MOEKIT_TEST_DATA) / "compact" / "h5py_v1.h5");
  CHECK(m.config_json == R"({"hidden_size": 2})");
  CHECK(m.do_lower_case);
  CHECK(m.vocab == std::vector<std::string>{"[PAD]", "a", ""});
  CHECK(m.aliases == std::map<std::string, std::string>{{"shared", "w16"}});
  CHECK(tensor_to_mat(m.tensors.at("w16"), "w16") == (Mat(2, 2) << 1.5f, -2, 0.25f, 65504).finished());
  CHECK(m.tensors.at("w16").dtype == DType::F16);
  CHECK(tensor_to_mat(m.tensors.at("big_endian"), "be") == (Mat(1, 3) << 1, -0.5f, 3.25f).finished());
  const Tensor& q = m.tensors.at("q");
  CHECK((q.dtype == DType::I8 && q.shape == std::vector<int64_t>{2, 2}));
  CHECK(q.data == std::vector<uint8_t>{0x81, 5, 0, 127});
  CHECK(tensor_to_mat(m.scales.at("q"), "s") == (Mat(1, 2) << 0.5f, 0.25f).finished());
}

TEST_CASE("the checksum block: h5 readers skip it, older files load unverified", "[compact][checksum]") {
  TempDir tmp;
  const fs::path p = tmp.dir / "sealed.h5";
  write_compact(p, sample_model());
  std::ifstream in(p, std::ios::binary);
  std::string head(kChecksumBlockBytes + 8, '\0');
  in.read(head.data(), std::streamsize(head.size()));
  CHECK(head.compare(0, 33, "moekit-hdf5-checksum v1 xxh3-128 ") == 0);
  CHECK(head.compare(kChecksumBlockBytes, 4, "\x89HDF") == 0);  // HDF5's superblock right after the block
  CHECK(verify_hdf5_checksum(p) == Integrity::verified);
  CHECK(read_compact(p).verified);
  CHECK(is_compact_file(p));
  // A plain HDF5 file (what moekit wrote before the block existed) still reads, unverified.
  const fs::path legacy = fs::path(MOEKIT_TEST_DATA) / "compact" / "v1.h5";
  CHECK(verify_hdf5_checksum(legacy) == Integrity::unverified);
  CHECK_FALSE(read_compact(legacy).verified);
}

TEST_CASE("500 random flips of a sealed export's first 40 KB are each refused by the checksum", "[compact][checksum]") {
  // The issue's experiment (1-8 random bytes in the metadata region, which crashed libhdf5 27% of
  // the time before): every flip changes a byte, and every byte of the file is covered (the block
  // itself by its strict format and zero padding, the rest by the hash), so every one must fail
  // with the checksum error, before libhdf5 reads anything.
  TempDir tmp;
  const fs::path clean = tmp.dir / "clean.h5";
  write_compact(clean, sample_model());
  std::ifstream in(clean, std::ios::binary);
  const std::string original(std::istreambuf_iterator<char>(in), {});
  const size_t region = std::min<size_t>(original.size(), 40 * 1024);
  std::mt19937 rng(14);
  const fs::path p = tmp.dir / "flipped.h5";
  int refused = 0;
  for (int trial = 0; trial < 500; ++trial) {
    std::string b = original;
    const int flips = 1 + int(rng() % 8);
    for (int k = 0; k < flips; ++k) b[rng() % region] ^= char(1 + rng() % 255);  // never a no-op
    if (b == original) continue;  // two flips of one byte cancelled out
    std::ofstream(p, std::ios::binary | std::ios::trunc) << b;
    INFO("trial " << trial);
    CHECK_THROWS_WITH(read_compact(p), Contains("flipped.h5: file is corrupt or truncated (checksum"));
    ++refused;
  }
  CHECK(refused >= 495);
}
