// libFuzzer target: config.json (io::read_hf_config), then the check of its sizes against a
// small weight set, as a model load does before allocating.
#include "fuzz/fuzz_util.h"
#include "io/config_fit.h"
#include "io/hf_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = moekit::fuzz::input_file(data, size, "config.json");
  moekit::fuzz::expect_error_or_success([&] {
    const moekit::BertConfig c = moekit::io::read_hf_config(path);
    std::map<std::string, moekit::io::Tensor> tensors;
    moekit::io::Tensor t;
    t.dtype = moekit::io::DType::F32;
    t.shape = {64, 16};
    t.data.resize(64 * 16 * 4);
    tensors["bert.embeddings.word_embeddings.weight"] = t;
    tensors["bert.encoder.layer.1.output.dense.weight"] = t;
    moekit::io::check_config_fits_weights(c, tensors, path, "model.safetensors");
  });
  return 0;
}
