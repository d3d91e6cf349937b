#include "distill/distill_loss.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "model/error.h"
#include "model/loss.h"

namespace moekit::distill {

void DistillOptions::validate() const {
  train.validate();
  auto need = [](bool ok, const std::string& msg) {
    if (!ok) fail("", msg);
  };
  need(lambda >= 0 && w_task >= 0 && w_hidden >= 0 && w_kd >= 0 && w_balance >= 0 && w_attention >= 0,
       "loss weights must not be negative");
  need(kd == "kl" || kd == "symmetric-kl", "--kd must be kl or symmetric-kl, got " + kd);
  need(temperature > 0, "--temperature must be positive");
}

std::vector<std::pair<int, int>> hidden_pairs(const std::string& map, int ls, int lt) {
  std::vector<std::pair<int, int>> pairs{{0, 0}};
  if (map.empty()) {
    // Student layer i -> teacher layer (i+1)*lt/ls - 1: identity when equal, uniform otherwise.
    for (int i = 0; i < ls; ++i) pairs.emplace_back(i + 1, static_cast<int>((static_cast<int64_t>(i) + 1) * lt / ls));
    return pairs;
  }
  std::stringstream ss(map);
  for (std::string item; std::getline(ss, item, ',');) {
    const size_t colon = item.find(':');
    int s = -1, t = -1;
    try {
      if (colon != std::string::npos) {
        s = std::stoi(item.substr(0, colon));
        t = std::stoi(item.substr(colon + 1));
      }
    } catch (const std::exception&) {
      s = -1;
    }
    if (s < 0 || s >= ls || t < 0 || t >= lt)
      fail("", "--layer-map: \"" + item + "\" is not student:teacher with student < " + std::to_string(ls) +
                   " and teacher < " + std::to_string(lt));
    pairs.emplace_back(s + 1, t + 1);
  }
  return pairs;
}

std::string param_group(const std::string& name) {
  if (name.find(".moe.router.") != std::string::npos) return "router";
  if (name.find(".moe.experts.") != std::string::npos || name.find(".moe.shared_expert.") != std::string::npos)
    return "experts";
  // DistilBERT: attention.{q,k,v,out}_lin, its post-attention LayerNorm sa_layer_norm, pre_classifier
  if (name.find(".attention.") != std::string::npos || name.find(".sa_layer_norm.") != std::string::npos)
    return "attention";
  if (name.find("embeddings.") != std::string::npos) return "embeddings";
  if (name.find("pooler.") != std::string::npos || name.rfind("classifier", 0) == 0 ||
      name.rfind("pre_classifier", 0) == 0)
    return "head";
  return "ffn";
}

ParamList select_groups(const ParamList& params, const std::string& groups) {
  if (groups.empty()) return params;
  const std::set<std::string> known = {"embeddings", "attention", "ffn", "experts", "router", "head"};
  std::set<std::string> wanted;
  std::stringstream ss(groups);
  for (std::string g; std::getline(ss, g, ',');) {
    if (!known.count(g)) fail("", "--train-only: unknown group \"" + g + "\" (groups: embeddings, attention, ffn, experts, router, head)");
    wanted.insert(g);
  }
  ParamList out;
  for (Param* p : params)
    if (wanted.count(param_group(p->name))) out.push_back(p);
  if (out.empty()) fail("", "--train-only " + groups + " selects no parameter of this model");
  return out;
}

LossFn distillation_loss(const BertModel& teacher, const DistillOptions& o, std::vector<std::pair<int, int>> pairs) {
  const KdKind kind = o.kd == "kl" ? KdKind::kl : KdKind::symmetric_kl;
  return [&teacher, o, kind, pairs](BertModel& student, const Batch& batch, Rng& rng, float scale) {
    // Eval mode; a cache only when the attention term needs the teacher's attention maps.
    ForwardCache teacher_cache;
    const bool attention = o.w_attention > 0;
    const Outputs t = teacher.forward(batch, attention ? &teacher_cache : nullptr, nullptr, true);
    ForwardCache cache;
    cache.balance_weight = static_cast<float>(o.w_balance) * scale;
    const Outputs s = student.forward(batch, &cache, &rng, true);
    LossTerms terms;
    Mat d_task, d_kd, dlogits = Mat::Zero(s.logits.rows(), s.logits.cols());
    const Task head = student.config.task;
    const double task = task_loss(head, s.logits, batch, &d_task);
    const double kd = task_kd_loss(head, s.logits, t.logits, kind, o.temperature, &d_kd, &batch);
    dlogits += d_task * static_cast<float>(o.w_task) + d_kd * static_cast<float>(o.lambda * o.w_kd);
    std::vector<Mat> dhidden(s.hidden_states.size());
    double hidden = 0;
    for (const auto& [si, ti] : pairs) {
      Mat g;
      hidden += masked_mse(s.hidden_states[static_cast<size_t>(si)], t.hidden_states[static_cast<size_t>(ti)], batch.mask, &g);
      g *= static_cast<float>(o.lambda * o.w_hidden) * scale;
      if (dhidden[static_cast<size_t>(si)].size() == 0)
        dhidden[static_cast<size_t>(si)] = std::move(g);
      else
        dhidden[static_cast<size_t>(si)] += g;
    }
    std::vector<Mat> dscores;
    double attn = 0;
    if (attention) {
      const int64_t heads = student.config.num_attention_heads;
      if (teacher.config.num_attention_heads != heads)
        fail("", "--w-attention needs the same number of heads (student " + std::to_string(heads) + ", teacher " +
                     std::to_string(teacher.config.num_attention_heads) + ")");
      dscores.resize(student.layers.size());
      for (const auto& [si, ti] : pairs) {
        if (si == 0 || ti == 0) continue;  // the embeddings have no attention
        const auto ls = static_cast<size_t>(si - 1), lt = static_cast<size_t>(ti - 1);
        Mat g;
        attn += attention_kl(cache.layers[ls].attention.probs, teacher_cache.layers[lt].attention.probs, batch.mask,
                             batch.seq, heads, &g);
        g *= static_cast<float>(o.lambda * o.w_attention) * scale;
        if (dscores[ls].size() == 0)
          dscores[ls] = std::move(g);
        else
          dscores[ls] += g;
      }
    }
    dlogits *= scale;
    student.backward(batch, dlogits, cache, &dhidden, nullptr, attention ? &dscores : nullptr);
    terms.terms = {{"task", task}, {"kd", kd}, {"hidden", hidden}, {"balance", s.balance_loss}};
    if (attention) terms.terms["attention"] = attn;
    terms.total = o.w_task * task + o.w_balance * s.balance_loss +
                  o.lambda * (o.w_hidden * hidden + o.w_kd * kd + o.w_attention * attn);
    terms.expert_tokens = s.expert_tokens;
    terms.routed_slots = s.routed_slots;
    terms.dropped_slots = s.dropped_slots;
    return terms;
  };
}

}  // namespace moekit::distill
