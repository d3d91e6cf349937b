// ELECTRA (narrow embeddings + embeddings_project, GELU head without pooler) and XLM-RoBERTa
// (RoBERTa's architecture under roberta.* names): names, shapes, and the whole-model backward
// against finite differences in eval and train mode.
#include <catch2/catch.hpp>

#include "model/bert.h"
#include "model/error.h"
#include "model/loss.h"
#include "tests/support/model_gradcheck.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::test;

namespace {

BertConfig arch_config(const std::string& type) {
  BertConfig c = tiny_config();
  c.model_type = type;
  if (type == "electra") c.embedding_size = 8;
  if (type == "xlm-roberta") c.pad_token_id = 1;
  return c;
}

}  // namespace

TEST_CASE("ELECTRA and XLM-R parameters carry their Hugging Face names", "[model][arch]") {
  BertModel electra(arch_config("electra"));
  CHECK(electra.embeddings.word.value.cols() == 8);
  REQUIRE(electra.embeddings_project);
  CHECK(electra.embeddings_project->weight.name == "electra.embeddings_project.weight");
  CHECK(electra.embeddings_project->weight.value.rows() == 16);
  CHECK(electra.layers[1].attention.query.weight.name == "electra.encoder.layer.1.attention.self.query.weight");
  CHECK(electra.pooler.weight.name == "classifier.dense.weight");
  CHECK(electra.classifier.weight.name == "classifier.out_proj.weight");
  BertModel xlmr(arch_config("xlm-roberta"));
  CHECK(xlmr.embeddings.word.name == "roberta.embeddings.word_embeddings.weight");
  CHECK(xlmr.config.position_offset() == 2);
  CHECK_FALSE(xlmr.embeddings_project);
  BertConfig bad = tiny_config();
  bad.embedding_size = 8;
  CHECK_THROWS_WITH(bad.validate(), Catch::Contains("only an ELECTRA model"));
}

TEST_CASE("ELECTRA and XLM-R whole-model gradients match finite differences", "[model][arch][grad]") {
  for (const char* type : {"electra", "xlm-roberta"}) {
    for (bool train : {false, true}) {
      INFO(type << " train " << train);
      BertConfig c = arch_config(type);
      BertModel model(c);
      randomize(model, 41, 0.3);
      Batch b = tiny_batch(c, {7, 4, 5}, 19);
      const Rng drop(81);
      GradTolerance tol;
      tol.nmax = 12;
      tol.abs = 2e-4;
      check_model_gradient(
          model, b, [&](MatRef logits, Mat* d) { return softmax_cross_entropy(logits, b.labels, d); },
          train ? &drop : nullptr, tol);
    }
  }
}
