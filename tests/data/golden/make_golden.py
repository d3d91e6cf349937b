#!/usr/bin/python3
"""Regenerate the tiny golden fixtures under tests/data/golden/ (deterministic, seeded).

  /usr/bin/python3 tests/data/golden/make_golden.py [--out DIR]

Needs torch and numpy only. Each fixture is a Hugging Face model directory (config.json,
model.safetensors, vocab.txt for BERT) plus golden.json with inputs and the outputs of the
independent reference in reference_bert.py, computed in float64 from the weights exactly as
stored (after F16/BF16 rounding). See README.md for what each fixture checks.
"""
import argparse
import json
import os
import sys
import unicodedata

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_model  # noqa: E402
import reference_bert  # noqa: E402

SEQ_LEN = 12

VOCAB = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "!", "?", "'"] +
         ["the", "a", "an", "is", "was", "it", "this", "that", "movie", "film", "good", "bad",
          "great", "awful", "not", "very", "and", "but", "i", "we", "you", "love", "hate", "like",
          "fun", "boring", "story", "plot", "acting", "so", "too", "really", "play", "watch",
          "end", "time"] +
         ["##s", "##ed", "##ing", "##ly", "##er", "##est", "##y", "##able", "##ful", "##less",
          "##ness", "##ish", "##en", "##ment", "##al", "##ion", "##ic", "##ive"])

# (text, text_pair) for the BERT fixtures; "twice" is out of vocabulary -> [UNK].
TEXTS = [
    ("The Movie was GREAT!", "We watched twice"),  # 12 tokens: pair, no padding, type ids 1
    ("this film is not very fun", None),             # 8 tokens
    ("so boring.", None),                            # 5 tokens
]


# ----------------------------------------------------------------------------- tokenizer
# Minimal BERT (uncased) tokenizer: enough for the ASCII sentences above, where it behaves as
# transformers' BertTokenizer (lowercase, split on whitespace/punctuation, greedy WordPiece).

def _basic_tokenize(text):
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    out, cur = [], ""
    for c in text:
        if c.isspace():
            if cur:
                out.append(cur)
            cur = ""
        elif unicodedata.category(c).startswith("P") or (33 <= ord(c) <= 47) or (58 <= ord(c) <= 64):
            if cur:
                out.append(cur)
            out.append(c)
            cur = ""
        else:
            cur += c
    if cur:
        out.append(cur)
    return out


def _wordpiece(word, vocab):
    pieces, start = [], 0
    while start < len(word):
        end, cur = len(word), None
        while start < end:
            sub = word[start:end] if start == 0 else "##" + word[start:end]
            if sub in vocab:
                cur = sub
                break
            end -= 1
        if cur is None:
            return ["[UNK]"]
        pieces.append(cur)
        start = end
    return pieces


def encode(text, pair, vocab_list):
    vocab = {t: i for i, t in enumerate(vocab_list)}
    a = [p for w in _basic_tokenize(text) for p in _wordpiece(w, vocab)]
    toks = ["[CLS]"] + a + ["[SEP]"]
    types = [0] * len(toks)
    if pair is not None:
        b = [p for w in _basic_tokenize(pair) for p in _wordpiece(w, vocab)]
        toks += b + ["[SEP]"]
        types += [1] * (len(b) + 1)
    return [vocab[t] for t in toks], types, toks


def bert_inputs():
    ids, tts, masks, tokens = [], [], [], []
    for text, pair in TEXTS:
        i, t, toks = encode(text, pair, VOCAB)
        n = len(i)
        assert n <= SEQ_LEN
        ids.append(i + [0] * (SEQ_LEN - n))
        tts.append(t + [0] * (SEQ_LEN - n))
        masks.append([1] * n + [0] * (SEQ_LEN - n))
        tokens.append(toks)
    assert ids[0][0] == 2 and all(r[sum(m) - 1] == 3 for r, m in zip(ids, masks))
    assert sum(masks[0]) == SEQ_LEN and len({sum(m) for m in masks}) == 3
    return {"input_ids": ids, "token_type_ids": tts, "attention_mask": masks}, tokens


def roberta_inputs(rng, vocab_size):
    """<s>=0, <pad>=1, </s>=2; lengths 12 (pair, <s> A </s></s> B </s>), 9, 4; no pad id inside."""
    ids, masks = [], []
    for n, pair in ((12, True), (9, False), (4, False)):
        body = [int(v) for v in rng.randint(3, vocab_size, size=n - 2)]
        row = [0] + body + [2]
        if pair:
            row[5], row[6] = 2, 2
        ids.append(row + [1] * (SEQ_LEN - n))
        masks.append([1] * n + [0] * (SEQ_LEN - n))
    return {"input_ids": ids, "token_type_ids": [[0] * SEQ_LEN for _ in ids], "attention_mask": masks}


# ----------------------------------------------------------------------------- golden output

def _num(x):
    return float("%.12g" % x)


def _flat(t):
    return [_num(v) for v in t.reshape(-1).tolist()]


def run_reference(model_dir, inputs):
    ref = reference_bert.load(model_dir)
    args = (inputs["input_ids"], inputs["token_type_ids"], inputs["attention_mask"])
    with torch.no_grad():
        o64 = ref.forward(*args, dtype=torch.float64)
        o32 = ref.forward(*args, dtype=torch.float32)
    mask = torch.tensor(inputs["attention_mask"], dtype=torch.bool)
    diff = {"last_hidden": float((o64["last_hidden"] - o32["last_hidden"].double())[mask].abs().max())}
    if o64["logits"] is not None:
        diff["logits"] = float((o64["logits"] - o32["logits"].double()).abs().max())
    if o64.get("mlm_logits") is not None:
        diff["mlm_logits"] = float((o64["mlm_logits"] - o32["mlm_logits"].double())[mask].abs().max())
    return ref, o64, {k: float("%.1e" % v) for k, v in diff.items()}


def write_golden(model_dir, description, inputs, tokens=None):
    ref, out, diff = run_reference(model_dir, inputs)
    B, L, H = out["last_hidden"].shape
    g = {"description": description, "model_type": ref.model_type}
    if tokens is not None:
        g["texts"] = [[t, p] for t, p in TEXTS]
        g["tokens"] = tokens
    g.update(inputs)
    g["lengths"] = [int(sum(m)) for m in inputs["attention_mask"]]
    if out["logits"] is not None:
        g["logits"] = [[_num(v) for v in row] for row in out["logits"].tolist()]
        labels = ref.labels()
        g["predicted"] = [labels[int(i)] for i in out["logits"].argmax(dim=1).tolist()]
    if out["pooled"] is not None:
        g["pooled"] = [[_num(v) for v in row] for row in out["pooled"].tolist()]
    g["hidden_last"] = _flat(out["last_hidden"][0])
    g["hidden_last_shape"] = [L, H]
    g["last_hidden"] = _flat(out["last_hidden"])
    g["last_hidden_shape"] = [B, L, H]
    if out.get("mlm_logits") is not None:
        g["mlm_logits"] = _flat(out["mlm_logits"][0])
        g["mlm_logits_shape"] = [L, out["mlm_logits"].shape[2]]
    g["float32_max_abs_diff"] = diff
    g["ignored_tensors"] = ref.ignored
    # One key per line; each value compact (rows of 2-D int/float tables on one line each).
    lines = []
    for k, v in g.items():
        if isinstance(v, list) and v and isinstance(v[0], list):
            body = "[\n" + ",\n".join("    " + json.dumps(r, separators=(",", ":")) for r in v) + "\n  ]"
        else:
            body = json.dumps(v, separators=(",", ":"))
        lines.append("  %s: %s" % (json.dumps(k), body))
    with open(os.path.join(model_dir, "golden.json"), "w", encoding="utf-8") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")
    return g


def normal_from(seed):
    rs = np.random.RandomState(seed)  # legacy RandomState: stream fixed across numpy versions
    return lambda shape: rs.standard_normal(size=shape)


# ----------------------------------------------------------------------------- fixtures

def bert_tiny(out):
    d = os.path.join(out, "bert_tiny")
    cfg = make_model.make_config("bert", vocab=len(VOCAB), hidden=16, layers=2, heads=4, ffn=32,
                                 max_pos=40, act="gelu", labels=["neg", "neu", "pos"])
    sd = make_model.random_state_dict(make_model.tensor_shapes(cfg), normal_from(1), std=0.2)
    make_model.write_model_dir(d, cfg, sd, vocab=VOCAB)
    inputs, tokens = bert_inputs()
    return write_golden(d, "BertForSequenceClassification, gelu (erf), F32, canonical HF names", inputs, tokens)


def bert_tiny_variant(out):
    d = os.path.join(out, "bert_tiny_variant")
    cfg = make_model.make_config("bert", vocab=len(VOCAB), hidden=16, layers=2, heads=4, ffn=32,
                                 max_pos=40, act="gelu_new", labels=["neg", "neu", "pos"])
    sd = make_model.random_state_dict(make_model.tensor_shapes(cfg), normal_from(2), std=0.2)
    legacy = {}
    for name, a in sd.items():
        if name.startswith("bert."):
            name = name[len("bert."):]
        if name.endswith("LayerNorm.weight"):
            name = name[: -len("weight")] + "gamma"
        elif name.endswith("LayerNorm.bias"):
            name = name[: -len("bias")] + "beta"
        legacy[name] = a
    dtypes = {n: "F16" for n in legacy}
    legacy["embeddings.position_ids"] = np.arange(cfg["max_position_embeddings"], dtype=np.int64)[None, :]
    cfg["torch_dtype"] = "float16"
    make_model.write_model_dir(d, cfg, legacy, dtypes=dtypes, vocab=VOCAB)
    inputs, tokens = bert_inputs()
    return write_golden(d, "BertForSequenceClassification, gelu_new (tanh), F16 storage, legacy gamma/beta "
                           "names, no 'bert.' prefix, extra int64 embeddings.position_ids buffer",
                        inputs, tokens)


def roberta_tiny(out):
    d = os.path.join(out, "roberta_tiny")
    cfg = make_model.make_config("roberta", vocab=len(VOCAB), hidden=16, layers=2, heads=2, ffn=24,
                                 max_pos=SEQ_LEN + 2 + 6, type_vocab=1, act="relu",
                                 labels=["negative", "positive"], pad=1, eps=1e-5)
    sd = make_model.random_state_dict(make_model.tensor_shapes(cfg), normal_from(3), std=0.2)
    dtypes = {n: "BF16" for n in sd if "_embeddings." in n}
    make_model.write_model_dir(d, cfg, sd, dtypes=dtypes)
    inputs = roberta_inputs(np.random.RandomState(33), cfg["vocab_size"])
    return write_golden(d, "RobertaForSequenceClassification, relu, pad_token_id 1 (positions from 2), "
                           "type_vocab_size 1, BF16 embedding tables, F32 elsewhere", inputs)


def xlmr_tiny(out):
    d = os.path.join(out, "xlmr_tiny")
    cfg = make_model.make_config("xlm-roberta", vocab=len(VOCAB), hidden=16, layers=2, heads=4, ffn=32,
                                 max_pos=SEQ_LEN + 2 + 4, type_vocab=1, act="gelu",
                                 labels=["contradiction", "entailment", "neutral"], pad=1, eps=1e-5)
    sd = make_model.random_state_dict(make_model.tensor_shapes(cfg), normal_from(5), std=0.2)
    make_model.write_model_dir(d, cfg, sd)
    inputs = roberta_inputs(np.random.RandomState(55), cfg["vocab_size"])
    return write_golden(d, "XLMRobertaForSequenceClassification: the RoBERTa architecture under roberta.* names, "
                           "gelu, pad_token_id 1, type_vocab_size 1, F32", inputs)


def electra_tiny(out):
    d = os.path.join(out, "electra_tiny")
    cfg = make_model.make_config("electra", vocab=len(VOCAB), hidden=16, layers=2, heads=4, ffn=32,
                                 max_pos=40, act="gelu", labels=["neg", "neu", "pos"], embedding_size=8)
    sd = make_model.random_state_dict(make_model.tensor_shapes(cfg), normal_from(6), std=0.2)
    make_model.write_model_dir(d, cfg, sd, vocab=VOCAB)
    inputs, tokens = bert_inputs()
    return write_golden(d, "ElectraForSequenceClassification: embedding_size 8 -> electra.embeddings_project -> "
                           "hidden 16, no pooler, head classifier.dense -> gelu -> classifier.out_proj, F32",
                        inputs, tokens)


def bert_tiny_noclf(out):
    d = os.path.join(out, "bert_tiny_noclf")
    cfg = make_model.make_config("bert", vocab=len(VOCAB), hidden=16, layers=2, heads=4, ffn=32,
                                 max_pos=40, act="gelu", labels=None, head=False)
    cfg["architectures"] = ["BertForMaskedLM"]
    cfg["num_labels"] = 2
    sd = make_model.random_state_dict(make_model.tensor_shapes(cfg, head=False), normal_from(4), std=0.2)
    rs = np.random.RandomState(44)
    sd["cls.predictions.bias"] = (rs.standard_normal(len(VOCAB)) * 0.05).astype(np.float32)
    sd["cls.predictions.transform.dense.weight"] = (rs.standard_normal((16, 16)) * 0.2).astype(np.float32)
    make_model.write_model_dir(d, cfg, sd, vocab=VOCAB)
    inputs, tokens = bert_inputs()
    return write_golden(d, "bare BERT encoder + pooler, no classifier (num_labels 2 in config, no id2label); "
                           "extra cls.predictions.* MLM tensors to ignore; check last_hidden (and pooled)",
                        inputs, tokens)


def distilbert_tiny(out):
    d = os.path.join(out, "distilbert_tiny")
    cfg = make_model.make_config("distilbert", vocab=len(VOCAB), hidden=16, layers=2, heads=4, ffn=32,
                                 max_pos=40, act="gelu", labels=["neg", "neu", "pos"])
    sd = make_model.random_state_dict(make_model.tensor_shapes(cfg), normal_from(7), std=0.2)
    make_model.write_model_dir(d, cfg, sd, vocab=VOCAB)
    inputs, tokens = bert_inputs()
    return write_golden(d, "DistilBertForSequenceClassification: dim 16, n_layers 2, n_heads 4, hidden_dim 32, gelu; "
                           "no token types (the BERT tokenizer's token_type_ids are given and must be ignored); "
                           "head pre_classifier -> relu -> classifier, F32", inputs, tokens)


def distilbert_tiny_mlm(out):
    d = os.path.join(out, "distilbert_tiny_mlm")
    cfg = make_model.make_config("distilbert", vocab=len(VOCAB), hidden=16, layers=2, heads=4, ffn=32,
                                 max_pos=40, act="relu", labels=None, head=False)
    shapes = make_model.distilbert_tensor_shapes(cfg, head=False, mlm=True)
    sd = make_model.random_state_dict(shapes, normal_from(8), std=0.2)
    make_model.write_model_dir(d, cfg, sd, vocab=VOCAB)
    inputs, tokens = bert_inputs()
    return write_golden(d, "DistilBertForMaskedLM: relu; vocab_transform -> relu -> vocab_layer_norm -> "
                           "vocab_projector (weight tied to the word embeddings, not stored); no classifier; "
                           "mlm_logits of sequence 0", inputs, tokens)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=HERE)
    args = ap.parse_args(argv)
    assert len(VOCAB) == 64 and len(set(VOCAB)) == 64
    torch.set_num_threads(1)
    for fn in (bert_tiny, bert_tiny_variant, roberta_tiny, bert_tiny_noclf, xlmr_tiny, electra_tiny, distilbert_tiny,
               distilbert_tiny_mlm):
        g = fn(args.out)
        print("%-18s lengths %s  %s" % (fn.__name__, g["lengths"],
                                        ("logits[0] %s" % g["logits"][0]) if "logits" in g else "no head"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
