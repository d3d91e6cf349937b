#include "compress/onnx_export.h"

#include <climits>
#include <filesystem>

#include "model/error.h"

#ifdef MOEKIT_HAVE_ONNX
#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>

#include "compress/onnx_graph.h"
#include "io/atomic_file.h"
#endif

namespace moekit::compress {

#ifdef MOEKIT_HAVE_ONNX

bool onnx_export_available() { return true; }

namespace {

// Above this a model file could not be one protobuf message (2 GB), with room for the graph.
constexpr size_t kInlineLimit = size_t{INT_MAX} - (size_t{64} << 20);
// ONNX's convention (onnx.external_data_helper): small tensors stay inline.
constexpr size_t kExternalMinBytes = 1024;
// Tensor offsets in the data file are page-aligned, so a runtime may map them.
constexpr size_t kExternalAlign = 4096;

// ONNX external data: every initializer of at least kExternalMinBytes moves, raw, into `data`
// (its location is the file name, relative to the model's folder, as ONNX requires; with offset
// and length), written atomically. The proto then holds only the graph and small tensors.
void move_weights_to_file(onnx::ModelProto& proto, const std::filesystem::path& data) {
  const std::string location = data.filename().string();
  io::write_file_atomic(data, [&](std::ostream& os) {
    size_t offset = 0;
    for (onnx::TensorProto& t : *proto.mutable_graph()->mutable_initializer()) {
      const std::string& raw = t.raw_data();
      if (raw.size() < kExternalMinBytes) continue;
      const size_t pad = (kExternalAlign - offset % kExternalAlign) % kExternalAlign;
      os.write(std::string(pad, '\0').data(), static_cast<std::streamsize>(pad));
      offset += pad;
      os.write(raw.data(), static_cast<std::streamsize>(raw.size()));
      auto entry = [&](const char* key, const std::string& value) {
        onnx::StringStringEntryProto* e = t.add_external_data();
        e->set_key(key);
        e->set_value(value);
      };
      entry("location", location);
      entry("offset", std::to_string(offset));
      entry("length", std::to_string(raw.size()));
      t.set_data_location(onnx::TensorProto::EXTERNAL);
      offset += raw.size();
      t.clear_raw_data();
    }
  });
}

}  // namespace

ExportSummary export_onnx(const BertModel& model, const ExportOptions& o) {
  if (o.dtype != "fp32" && o.dtype != "int8")
    fail("", "--format onnx takes --dtype fp32 or int8, got " + o.dtype);
  onnx::ModelProto proto = build_onnx_model(model, OnnxGraphOptions{o.dtype == "int8"});
  try {
    onnx::checker::check_model(proto);
    // Strict: a node whose output shapes cannot be inferred is an error in the graph we built.
    onnx::shape_inference::InferShapes(proto, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(true, 1, false));
  } catch (const std::exception& e) {
    fail(o.out, std::string("the ONNX graph fails onnx's checks (a moekit bug): ") + e.what());
  }
  const size_t inline_bytes = proto.ByteSizeLong();
  const std::filesystem::path data_file = o.out + ".data";
  const bool external = o.external_data || inline_bytes > kInlineLimit;
  if (external) {
    move_weights_to_file(proto, data_file);
  } else {
    std::error_code ec;  // a stale data file of an earlier external export would mislead
    std::filesystem::remove(data_file, ec);
  }
  if (proto.ByteSizeLong() > static_cast<size_t>(INT_MAX))
    fail(o.out, "the ONNX graph without its weights is still over 2 GB, the protobuf limit");
  io::write_file_atomic(o.out, [&](std::ostream& os) {
    if (!proto.SerializeToOstream(&os)) fail(o.out, "could not serialise the ONNX model");
  });
  ExportSummary s;
  s.bytes = proto.ByteSizeLong() + (external ? std::filesystem::file_size(data_file) : 0);
  s.tensors = static_cast<size_t>(proto.graph().initializer_size());
  return s;
}

#else

bool onnx_export_available() { return false; }

ExportSummary export_onnx(const BertModel&, const ExportOptions& o) {
  fail(o.out, "this moekit was built without ONNX support; hint: install libonnx-dev and libprotobuf-dev "
              "(tests/install_deps.sh) and rebuild");
}

#endif

}  // namespace moekit::compress
