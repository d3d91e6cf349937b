// safetensors reader/writer, dtype conversions and atomic writes, including the corrupt-input
// catalogue (STYLE 2.7, after llama.cpp test-gguf): every defect gives one moekit::Error naming
// the file and saying what is wrong.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

#include "io/atomic_file.h"
#include "io/half.h"
#include "io/safetensors.h"
#include "model/error.h"
#include "tests/support/temp_dir.h"

using namespace moekit;
using namespace moekit::io;
using Catch::Contains;

namespace {

struct TempDir {
  fs::path dir = test::unique_scratch_dir("safetensors");
};

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A safetensors file from a header text and a data section, with an explicit length prefix.
std::string st_file(const std::string& header, const std::string& data, uint64_t len) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[size_t(i)] = char((len >> (8 * i)) & 0xff);
  return s + header + data;
}
std::string st_file(const std::string& header, const std::string& data) {
  return st_file(header, data, header.size());
}

Mat random_mat(Eigen::Index r, Eigen::Index c, float scale, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  Mat m(r, c);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = u(rng);
  return m;
}

}  // namespace

TEST_CASE("fp16 conversion rounds to nearest even and keeps inf, nan and subnormals", "[io]") {
  const float sub = std::ldexp(1.0f, -24);  // smallest half subnormal
  CHECK(float_to_half(0.0f) == 0x0000);
  CHECK(float_to_half(-0.0f) == 0x8000);
  CHECK(float_to_half(1.0f) == 0x3c00);
  CHECK(float_to_half(65504.0f) == 0x7bff);
  CHECK(float_to_half(65519.0f) == 0x7bff);
  CHECK(float_to_half(65520.0f) == 0x7c00);  // tie between max and the next step: rounds to inf
  CHECK(float_to_half(std::numeric_limits<float>::infinity()) == 0x7c00);
  CHECK(float_to_half(-std::numeric_limits<float>::infinity()) == 0xfc00);
  CHECK(std::isnan(half_to_float(float_to_half(std::numeric_limits<float>::quiet_NaN()))));
  CHECK(std::isnan(half_to_float(0x7c01)));
  CHECK(std::isinf(half_to_float(0x7c00)));
  // Ties in the normal range go to the even mantissa.
  CHECK(float_to_half(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);
  CHECK(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3c02);
  CHECK(float_to_half(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)) == 0x3c01);
  // Subnormals and their ties.
  CHECK(half_to_float(0x0001) == sub);
  CHECK(half_to_float(0x8001) == -sub);
  CHECK(half_to_float(0x03ff) == 1023 * sub);
  CHECK(float_to_half(sub) == 0x0001);
  CHECK(float_to_half(sub / 2) == 0x0000);         // tie with 0: even
  CHECK(float_to_half(sub * 0.75f) == 0x0001);     // above the tie
  CHECK(float_to_half(sub * 1.5f) == 0x0002);      // tie 1|2: even
  CHECK(float_to_half(sub * 2.5f) == 0x0002);      // tie 2|3: even
  CHECK(float_to_half(1023.5f * sub) == 0x0400);   // rounds up into the smallest normal
  CHECK(float_to_half(std::ldexp(1.0f, -14)) == 0x0400);
  CHECK(float_to_half(std::numeric_limits<float>::denorm_min()) == 0x0000);
  CHECK(float_to_half(-1e-30f) == 0x8000);

  // Every half value survives half -> float -> half (nan stays nan).
  int bad = 0;
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = half_to_float(uint16_t(h));
    const bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
    if (nan ? !std::isnan(f) : float_to_half(f) != h) ++bad;
  }
  CHECK(bad == 0);
#ifdef __FLT16_MAX__
  // The compiler's own conversion is an independent reference for random floats.
  std::mt19937 rng(7);
  int mismatch = 0;
  for (int i = 0; i < 200000; ++i) {
    const float f = bits_float(rng());
    if (std::isnan(f)) continue;
    const _Float16 ref = static_cast<_Float16>(f);
    uint16_t ref_bits;
    std::memcpy(&ref_bits, &ref, 2);
    if (float_to_half(f) != ref_bits) ++mismatch;
  }
  CHECK(mismatch == 0);
#endif
}

TEST_CASE("bf16 conversion rounds to nearest even and keeps inf, nan and subnormals", "[io]") {
  CHECK(float_to_bf16(1.0f) == 0x3f80);
  CHECK(float_to_bf16(1.0f + std::ldexp(1.0f, -8)) == 0x3f80);      // tie: even
  CHECK(float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)) == 0x3f82);  // tie: even (up)
  CHECK(float_to_bf16(std::numeric_limits<float>::max()) == 0x7f80);
  CHECK(float_to_bf16(-std::numeric_limits<float>::infinity()) == 0xff80);
  CHECK(std::isnan(bf16_to_float(float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  CHECK(std::isnan(bf16_to_float(float_to_bf16(bits_float(0x7f800001u)))));  // low-bit nan is not inf
  CHECK(float_to_bf16(std::ldexp(1.0f, -130)) == 0x0008);                    // float subnormal, exact
  CHECK(float_to_bf16(bits_float(0x00018000u)) == 0x0002);                   // subnormal tie: even
  CHECK(bf16_to_float(0x0001) == std::ldexp(1.0f, -133));
  int bad = 0;
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const float f = bf16_to_float(uint16_t(b));
    if (std::isnan(f) ? !std::isnan(bf16_to_float(float_to_bf16(f))) : float_to_bf16(f) != b) ++bad;
  }
  CHECK(bad == 0);
}

TEST_CASE("safetensors round trip: F32 exact, F16 and BF16 within their precision, I32 exact", "[io]") {
  TempDir tmp;
  const fs::path path = tmp.dir / "model.safetensors";
  Mat w = random_mat(4, 7, 3.0f, 1);
  w(0, 0) = -0.0f;
  w(0, 1) = std::numeric_limits<float>::denorm_min();
  w(0, 2) = std::numeric_limits<float>::max();
  const Mat bias = random_mat(1, 7, 1.0f, 2);
  const Mat h = random_mat(5, 3, 4.0f, 3);
  std::map<std::string, Tensor> tensors{
      {"w", mat_to_tensor(w, DType::F32, false)},
      {"b", mat_to_tensor(bias, DType::F32, true)},
      {"h16", mat_to_tensor(h, DType::F16, false)},
      {"hbf", mat_to_tensor(h, DType::BF16, false)},
      {"idx", int32_tensor({3, -1, 2147483647, -2147483647 - 1, 0, 9}, {2, 3})},
      {"empty", mat_to_tensor(Mat(0, 4), DType::F32, false)},
  };
  write_safetensors(path, tensors, {{"format", "pt"}, {"note", "é ü"}});

  const SafetensorsFile f = read_safetensors(path);
  REQUIRE(f.tensors.size() == tensors.size());
  CHECK(f.metadata == std::map<std::string, std::string>{{"format", "pt"}, {"note", "é ü"}});
  for (const auto& [name, t] : tensors) {
    INFO(name);
    CHECK(f.tensors.at(name).dtype == t.dtype);
    CHECK(f.tensors.at(name).shape == t.shape);
    CHECK(f.tensors.at(name).data == t.data);
  }
  CHECK(f.tensors.at("b").shape == std::vector<int64_t>{7});
  const Mat w2 = tensor_to_mat(f.tensors.at("w"), "w");
  CHECK(std::memcmp(w2.data(), w.data(), size_t(w.size()) * 4) == 0);  // bitwise, -0 included
  CHECK(tensor_to_mat(f.tensors.at("b"), "b") == bias);
  const Mat h16 = tensor_to_mat(f.tensors.at("h16"), "h16");
  const Mat hbf = tensor_to_mat(f.tensors.at("hbf"), "hbf");
  for (Eigen::Index i = 0; i < h.size(); ++i) {
    const float x = h.data()[i];
    if (std::abs(x) >= std::ldexp(1.0f, -14))  // fp16 normal range: 2^-11 relative
      CHECK(std::abs(h16.data()[i] - x) <= std::ldexp(std::abs(x), -11));
    else
      CHECK(std::abs(h16.data()[i] - x) <= std::ldexp(1.0f, -25));
    CHECK(std::abs(hbf.data()[i] - x) <= std::ldexp(std::abs(x), -8));
  }
  CHECK(tensor_to_int32(f.tensors.at("idx"), "idx") ==
        std::vector<int32_t>{3, -1, 2147483647, -2147483647 - 1, 0, 9});
  CHECK(tensor_to_mat(f.tensors.at("empty"), "empty").rows() == 0);

  // Layout as the reference writes it: padded header, data in name order, contiguous.
  const std::string bytes = read_bytes(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | uint8_t(bytes[size_t(i)]);
  CHECK(n % 8 == 0);
  const auto header = nlohmann::json::parse(bytes.substr(8, n));
  CHECK(header["b"]["data_offsets"] == nlohmann::json::array({0, 28}));
  CHECK(header["empty"]["data_offsets"] == nlohmann::json::array({28, 28}));
  CHECK(header["h16"]["data_offsets"][0] == 28);
  CHECK(8 + n + 28 + 30 + 30 + 24 + 112 == bytes.size());
}

TEST_CASE("reads the hand-built reference file (numpy, official layout)", "[io]") {
  const fs::path path = fs::path(MOEKIT_TEST_DATA) / "safetensors" / "reference_small.safetensors";
  const SafetensorsFile f = read_safetensors(path);
  CHECK(f.metadata == std::map<std::string, std::string>{{"format", "pt"}, {"source", "make_reference.py"}});
  REQUIRE(f.tensors.size() == 5);
  Mat w(2, 3);
  w << -1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f;
  CHECK(tensor_to_mat(f.tensors.at("classifier.weight"), "w") == w);
  const Mat b = tensor_to_mat(f.tensors.at("classifier.bias"), "b");
  CHECK((b.rows() == 1 && b.cols() == 2 && b(0, 0) == 1.5f && b(0, 1) == -0.25f));
  const Mat h = tensor_to_mat(f.tensors.at("encoder.half"), "h");
  CHECK(h(0, 0) == 65504.0f);
  CHECK(h(0, 1) == std::ldexp(1.0f, -24));
  CHECK(std::signbit(h(1, 0)));
  CHECK(std::abs(h(1, 1) - 0.1f) <= std::ldexp(0.1f, -11));
  const Mat bf = tensor_to_mat(f.tensors.at("encoder.bf16"), "bf");
  CHECK((bf(0, 0) == 1.0f && bf(0, 1) == -2.0f && bf(0, 2) == 0.5f));
  const Tensor& pos = f.tensors.at("bert.embeddings.position_ids");
  CHECK(pos.dtype == DType::I64);
  CHECK(pos.shape == std::vector<int64_t>{1, 4});
  CHECK(tensor_to_int32(pos, "position_ids") == std::vector<int32_t>{0, 1, 2, 3});
}

TEST_CASE("tensor conversions refuse wrong dtypes, ranks and values, naming the tensor", "[io]") {
  Tensor t3{DType::F32, {2, 2, 2}, std::vector<uint8_t>(32)};
  CHECK_THROWS_WITH(tensor_to_mat(t3, "enc.w"), Contains("enc.w") && Contains("expected 1 or 2 dimensions"));
  Tensor short_data{DType::F32, {2, 2}, std::vector<uint8_t>(12)};
  CHECK_THROWS_WITH(tensor_to_mat(short_data, "enc.w"), Contains("enc.w") && Contains("needs 16 bytes, got 12"));
  const Tensor ints = int32_tensor({1, 2}, {2});
  CHECK_THROWS_WITH(tensor_to_mat(ints, "ids"), Contains("ids") && Contains("got I32"));
  CHECK_THROWS_WITH(tensor_to_int32(mat_to_tensor(Mat::Zero(1, 2), DType::F32, true), "idx"), Contains("got F32"));
  CHECK_THROWS_AS(int32_tensor({1, 2, 3}, {2, 2}), Error);
  CHECK_THROWS_AS(mat_to_tensor(Mat::Zero(2, 2), DType::F32, true), Error);
  CHECK_THROWS_AS(mat_to_tensor(Mat::Zero(2, 2), DType::I8, false), Error);
  Tensor big{DType::I64, {2}, std::vector<uint8_t>(16)};
  const int64_t values[2] = {5, int64_t(1) << 40};
  std::memcpy(big.data.data(), values, 16);
  CHECK_THROWS_WITH(tensor_to_int32(big, "pos"), Contains("pos") && Contains("does not fit in int32"));
  CHECK(dtype_from_name("BF16") == DType::BF16);
  CHECK(!dtype_from_name("bf16").has_value());
  CHECK(dtype_size(DType::I64) == 8);
}

TEST_CASE("corrupt safetensors files each give an Error naming the file and the defect", "[io][corrupt]") {
  TempDir tmp;
  const std::string ok_entry = R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string data8(8, '\x01');
  struct Case {
    const char* name;
    std::string bytes;
    const char* phrase;
  };
  const std::vector<Case> cases{
      {"empty_file", "", "too short"},
      {"seven_bytes", std::string(7, '\0'), "too short"},
      {"header_past_eof", st_file("{}", "", 1000), "runs past the end of the file"},
      {"absurd_header_len", st_file("{}", "", uint64_t(1) << 40), "implausible"},
      {"zero_header_len", st_file("", data8), "malformed JSON"},
      {"bad_json", st_file(R"({"w": {"dtype": )", data8), "malformed JSON"},
      {"trailing_garbage", st_file(R"({} x)", ""), "malformed JSON"},
      {"invalid_utf8", st_file("{\"w\xff\": 1}", ""), "malformed JSON"},
      {"not_an_object", st_file("[1, 2]", ""), "header is not a JSON object"},
      {"duplicate_name", st_file(R"({"w":)" + ok_entry + R"(,"w":)" + ok_entry + "}", data8), "duplicate key \"w\""},
      {"entry_not_object", st_file(R"({"w": 3})", ""), "entry is not a JSON object"},
      {"empty_name", st_file(R"({"":)" + ok_entry + "}", data8), "empty tensor name"},
      {"missing_dtype", st_file(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", data8), "missing \"dtype\""},
      {"missing_shape", st_file(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", data8), "missing \"shape\""},
      {"missing_offsets", st_file(R"({"w":{"dtype":"F32","shape":[2]}})", data8), "missing \"data_offsets\""},
      {"dtype_not_string", st_file(R"({"w":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", data8),
       "\"dtype\" must be a string"},
      {"unknown_dtype", st_file(R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", data8),
       "unknown dtype \"F64\""},
      {"shape_not_array", st_file(R"({"w":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", data8),
       "\"shape\" must be an array"},
      {"negative_shape", st_file(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data8),
       "negative dimension"},
      {"float_shape", st_file(R"({"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", data8),
       "non-integer dimension"},
      {"shape_overflow",
       st_file(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}})", data8),
       "overflows"},
      {"offsets_one_value", st_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8]}})", data8),
       "must be two non-negative integers"},
      {"offsets_negative", st_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", data8),
       "must be two non-negative integers"},
      {"offsets_unordered", st_file(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", data8),
       "not ordered"},
      {"offsets_out_of_range", st_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", data8),
       "past the end of the data section"},
      {"size_mismatch", st_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data8),
       "needs 12 bytes, but data_offsets [0, 8] cover 8"},
      {"overlap",
       st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
               R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
               std::string(12, '\0')),
       "overlap"},
      {"metadata_not_object", st_file(R"({"__metadata__":["pt"]})", ""), "__metadata__ must be an object"},
      {"metadata_not_string", st_file(R"({"__metadata__":{"format":1}})", ""),
       "__metadata__ value for key 'format' must be a string"},
  };
  for (const Case& c : cases) {
    const fs::path p = tmp.dir / (std::string(c.name) + ".safetensors");
    write_bytes(p, c.bytes);
    INFO(c.name);
    CHECK_THROWS_AS(read_safetensors(p), Error);
    CHECK_THROWS_WITH(read_safetensors(p), Contains(p.string()) && Contains(c.phrase));
  }

  // Truncated data: a valid file written by moekit, cut short.
  const fs::path cut = tmp.dir / "truncated.safetensors";
  write_safetensors(cut, {{"w", mat_to_tensor(Mat::Ones(3, 3), DType::F32, false)}});
  fs::resize_file(cut, fs::file_size(cut) - 5);
  CHECK_THROWS_WITH(read_safetensors(cut), Contains(cut.string()) && Contains("file truncated?"));

  CHECK_THROWS_WITH(read_safetensors(tmp.dir / "missing.safetensors"), Contains("missing.safetensors") &&
                                                                           Contains("file not found"));
  CHECK_THROWS_WITH(read_safetensors(tmp.dir), Contains("not a regular file"));
}

TEST_CASE("safetensors reader accepts gaps, trailing bytes, padding and empty tensors", "[io]") {
  TempDir tmp;
  const fs::path p = tmp.dir / "lenient.safetensors";
  const std::string header = R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},)"
                             R"("e":{"dtype":"I8","shape":[0],"data_offsets":[5,5]},)"
                             R"("__metadata__":null}     )";
  write_bytes(p, st_file(header, std::string("\0\0\0\0\x07\x09zz", 8)));
  const SafetensorsFile f = read_safetensors(p);
  CHECK(f.tensors.at("a").data == std::vector<uint8_t>{7, 9});
  CHECK(f.tensors.at("e").data.empty());
  CHECK(f.metadata.empty());
}

TEST_CASE("write_safetensors refuses tensors whose bytes do not match their shape", "[io]") {
  TempDir tmp;
  const fs::path p = tmp.dir / "bad.safetensors";
  Tensor t{DType::F16, {3}, std::vector<uint8_t>(4)};
  CHECK_THROWS_WITH(write_safetensors(p, {{"x", t}}), Contains("bad.safetensors") && Contains("needs 6 bytes, got 4"));
  CHECK(!fs::exists(p));
}

TEST_CASE("atomic writes leave the old file intact and no temp file when the writer fails", "[io]") {
  TempDir tmp;
  const fs::path p = tmp.dir / "state.json";
  write_text_atomic(p, "old");
  CHECK_THROWS_AS(write_file_atomic(p,
                                    [](std::ostream& out) {
                                      out << "partial new content";
                                      throw std::runtime_error("writer failed");
                                    }),
                  std::runtime_error);
  CHECK(read_bytes(p) == "old");
  CHECK_THROWS_WITH(write_file_atomic(p, [](std::ostream& out) { out.setstate(std::ios::badbit); }),
                    Contains(p.string()) && Contains("write failed"));
  CHECK(read_bytes(p) == "old");
  int entries = 0;
  for (const auto& e : fs::directory_iterator(tmp.dir)) entries += e.path().filename() == "state.json" ? 1 : 100;
  CHECK(entries == 1);
  write_text_atomic(p, "new");
  CHECK(read_bytes(p) == "new");

  const fs::path a = temp_sibling(p), b = temp_sibling(p);
  CHECK(a != b);
  CHECK(a.parent_path() == p.parent_path());
  CHECK_THROWS_WITH(write_text_atomic(tmp.dir / "no_such_dir" / "x.txt", "x"), Contains("x.txt"));
}

TEST_CASE("commit_directory replaces the final directory with the temp one", "[io]") {
  TempDir tmp;
  const fs::path final_dir = tmp.dir / "ckpt", staged = tmp.dir / "ckpt.staging";
  fs::create_directories(staged);
  write_text_atomic(staged / "a.txt", "first");
  commit_directory(staged, final_dir);  // final_dir did not exist
  CHECK(read_bytes(final_dir / "a.txt") == "first");
  CHECK(!fs::exists(staged));

  fs::create_directories(staged);
  write_text_atomic(staged / "b.txt", "second");
  commit_directory(staged, final_dir);
  CHECK(read_bytes(final_dir / "b.txt") == "second");
  CHECK(!fs::exists(final_dir / "a.txt"));
  int entries = 0;
  for (const auto& e : fs::directory_iterator(tmp.dir)) entries += e.path() == final_dir ? 1 : 100;
  CHECK(entries == 1);  // old copy removed, nothing staged left
  CHECK_THROWS_WITH(commit_directory(tmp.dir / "nope", final_dir), Contains("nope") && Contains("not a directory"));
}
