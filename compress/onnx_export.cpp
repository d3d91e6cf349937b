#include "compress/onnx_export.h"

#include <climits>

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
  const size_t bytes = proto.ByteSizeLong();
  if (bytes > static_cast<size_t>(INT_MAX))
    fail(o.out, "the ONNX model is " + std::to_string(bytes >> 20) +
                    " MB; protobuf files stop at 2 GB and moekit does not write external data yet");
  io::write_file_atomic(o.out, [&](std::ostream& os) {
    if (!proto.SerializeToOstream(&os)) fail(o.out, "could not serialise the ONNX model");
  });
  ExportSummary s;
  s.bytes = bytes;
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
