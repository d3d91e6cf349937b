#!/usr/bin/python3
"""Write a random Hugging Face-format BERT/RoBERTa sequence-classification checkpoint of any size.

Not used for committed fixtures' sizes: it is a developer tool for checking moekit on bigger
models (with check_predict.py) and for benchmarks. make_golden.py reuses its helpers.

  make_model.py OUT_DIR [--layers 4] [--hidden 256] [--heads 4] [--ffn 1024] [--vocab 8000]
                [--max-pos 512] [--labels 2] [--act gelu] [--model-type bert|roberta|distilbert]
                [--dtype F32|F16|BF16] [--std auto] [--seed 0] [--no-head]
                [--vocab-file vocab.txt] [--inputs INPUT.json --batch 4 --seq 32]

OUT_DIR gets config.json, model.safetensors and vocab.txt (pseudo-words unless --vocab-file
gives a real WordPiece vocabulary). --inputs also writes a random input batch in the format
reference_bert.py / check_predict.py read.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_bert  # noqa: E402

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


ARCH_NAMES = {"bert": "Bert", "roberta": "Roberta", "xlm-roberta": "XLMRoberta", "electra": "Electra",
              "distilbert": "DistilBert"}


def prefix_of(model_type):
    """Base-model tensor prefix as transformers names it (XLM-R's modules are `roberta.*`)."""
    return "roberta." if model_type == "xlm-roberta" else model_type + "."


def make_config(model_type="bert", vocab=64, hidden=16, layers=2, heads=4, ffn=32, max_pos=40,
                type_vocab=None, act="gelu", labels=("LABEL_0", "LABEL_1"), pad=None, eps=None,
                head=True, embedding_size=None):
    """A config.json dict as transformers writes it (keys sorted). BERT-style defaults (pad 0,
    eps 1e-12, 2 token types) for bert and electra, RoBERTa's for roberta and xlm-roberta;
    DistilBertConfig's own keys for distilbert (see distilbert_config)."""
    if model_type == "distilbert":
        return distilbert_config(vocab, hidden, layers, heads, ffn, max_pos, act, labels, head)
    bert = model_type in ("bert", "electra")
    cfg = {
        "architectures": [ARCH_NAMES[model_type] + ("ForSequenceClassification" if head else "Model")],
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": act,
        "hidden_dropout_prob": 0.1,
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": ffn,
        "layer_norm_eps": eps if eps is not None else (1e-12 if bert else 1e-5),
        "max_position_embeddings": max_pos,
        "model_type": model_type,
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "pad_token_id": pad if pad is not None else (0 if bert else 1),
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "transformers_version": "4.30.2",
        "type_vocab_size": type_vocab if type_vocab is not None else (2 if bert else 1),
        "use_cache": True,
        "vocab_size": vocab,
    }
    if model_type == "electra":
        cfg["embedding_size"] = embedding_size if embedding_size is not None else hidden
    if not bert:
        cfg["bos_token_id"] = 0
        cfg["eos_token_id"] = 2
    if labels is not None:
        cfg["id2label"] = {str(i): l for i, l in enumerate(labels)}
        cfg["label2id"] = {l: i for i, l in enumerate(labels)}
    return cfg


def distilbert_config(vocab, hidden, layers, heads, ffn, max_pos, act, labels, head=True):
    """A DistilBertConfig config.json (dim, n_layers, n_heads, hidden_dim, activation, ...): no
    token types, LayerNorm eps fixed at 1e-12 (not a key), learned positions."""
    cfg = {
        "activation": act,
        "architectures": ["DistilBertForSequenceClassification" if head else "DistilBertForMaskedLM"],
        "attention_dropout": 0.1,
        "dim": hidden,
        "dropout": 0.1,
        "hidden_dim": ffn,
        "initializer_range": 0.02,
        "max_position_embeddings": max_pos,
        "model_type": "distilbert",
        "n_heads": heads,
        "n_layers": layers,
        "pad_token_id": 0,
        "qa_dropout": 0.1,
        "seq_classif_dropout": 0.2,
        "sinusoidal_pos_embds": False,
        "tie_weights_": True,
        "torch_dtype": "float32",
        "transformers_version": "4.30.2",
        "vocab_size": vocab,
    }
    if labels is not None:
        cfg["id2label"] = {str(i): l for i, l in enumerate(labels)}
        cfg["label2id"] = {l: i for i, l in enumerate(labels)}
    return cfg


def distilbert_tensor_shapes(cfg, head=True, mlm=False):
    """(name, shape, kind) of a DistilBertForSequenceClassification (head) or DistilBertForMaskedLM
    (mlm; the projector's weight is tied to the word embeddings and, as transformers saves it, not
    stored) checkpoint."""
    H, F, p = cfg["dim"], cfg["hidden_dim"], "distilbert."
    out = [(p + "embeddings.word_embeddings.weight", [cfg["vocab_size"], H], "weight"),
           (p + "embeddings.position_embeddings.weight", [cfg["max_position_embeddings"], H], "weight"),
           (p + "embeddings.LayerNorm.weight", [H], "ln_weight"), (p + "embeddings.LayerNorm.bias", [H], "ln_bias")]
    for i in range(cfg["n_layers"]):
        q = "%stransformer.layer.%d." % (p, i)
        for m in ("q_lin", "k_lin", "v_lin", "out_lin"):
            out += [(q + "attention." + m + ".weight", [H, H], "weight"), (q + "attention." + m + ".bias", [H], "bias")]
        out += [(q + "sa_layer_norm.weight", [H], "ln_weight"), (q + "sa_layer_norm.bias", [H], "ln_bias"),
                (q + "ffn.lin1.weight", [F, H], "weight"), (q + "ffn.lin1.bias", [F], "bias"),
                (q + "ffn.lin2.weight", [H, F], "weight"), (q + "ffn.lin2.bias", [H], "bias"),
                (q + "output_layer_norm.weight", [H], "ln_weight"), (q + "output_layer_norm.bias", [H], "ln_bias")]
    if head:
        C = len(cfg["id2label"]) if "id2label" in cfg else int(cfg.get("num_labels", 2))
        out += [("pre_classifier.weight", [H, H], "weight"), ("pre_classifier.bias", [H], "bias"),
                ("classifier.weight", [C, H], "weight"), ("classifier.bias", [C], "bias")]
    if mlm:
        out += [("vocab_transform.weight", [H, H], "weight"), ("vocab_transform.bias", [H], "bias"),
                ("vocab_layer_norm.weight", [H], "ln_weight"), ("vocab_layer_norm.bias", [H], "ln_bias"),
                ("vocab_projector.bias", [cfg["vocab_size"]], "bias")]
    return out


def tensor_shapes(cfg, head=True, pooler=None):
    """Ordered (name, shape, kind) for a checkpoint; kind is weight|bias|ln_weight|ln_bias."""
    mt = cfg["model_type"]
    if mt == "distilbert":
        return distilbert_tensor_shapes(cfg, head)
    p = prefix_of(mt)
    H, F = cfg["hidden_size"], cfg["intermediate_size"]
    E = cfg.get("embedding_size", H)  # ELECTRA's embedding width
    out = [
        (p + "embeddings.word_embeddings.weight", [cfg["vocab_size"], E], "weight"),
        (p + "embeddings.position_embeddings.weight", [cfg["max_position_embeddings"], E], "weight"),
        (p + "embeddings.token_type_embeddings.weight", [cfg["type_vocab_size"], E], "weight"),
        (p + "embeddings.LayerNorm.weight", [E], "ln_weight"),
        (p + "embeddings.LayerNorm.bias", [E], "ln_bias"),
    ]
    if E != H:
        out += [(p + "embeddings_project.weight", [H, E], "weight"), (p + "embeddings_project.bias", [H], "bias")]
    for i in range(cfg["num_hidden_layers"]):
        q = "%sencoder.layer.%d." % (p, i)
        for m, o, n in (("attention.self.query", H, H), ("attention.self.key", H, H),
                        ("attention.self.value", H, H), ("attention.output.dense", H, H)):
            out += [(q + m + ".weight", [o, n], "weight"), (q + m + ".bias", [o], "bias")]
        out += [(q + "attention.output.LayerNorm.weight", [H], "ln_weight"),
                (q + "attention.output.LayerNorm.bias", [H], "ln_bias"),
                (q + "intermediate.dense.weight", [F, H], "weight"), (q + "intermediate.dense.bias", [F], "bias"),
                (q + "output.dense.weight", [H, F], "weight"), (q + "output.dense.bias", [H], "bias"),
                (q + "output.LayerNorm.weight", [H], "ln_weight"), (q + "output.LayerNorm.bias", [H], "ln_bias")]
    if pooler if pooler is not None else mt == "bert":
        out += [(p + "pooler.dense.weight", [H, H], "weight"), (p + "pooler.dense.bias", [H], "bias")]
    if head:
        C = len(cfg["id2label"]) if "id2label" in cfg else int(cfg.get("num_labels", 2))
        if mt == "bert":
            out += [("classifier.weight", [C, H], "weight"), ("classifier.bias", [C], "bias")]
        else:
            out += [("classifier.dense.weight", [H, H], "weight"), ("classifier.dense.bias", [H], "bias"),
                    ("classifier.out_proj.weight", [C, H], "weight"), ("classifier.out_proj.bias", [C], "bias")]
    return out


def random_state_dict(shapes, normal, std, ln_std=0.1, bias_std=0.05):
    """name -> float32 array. `normal(shape)` draws standard normals (float64 or float32).
    Weights ~ N(0, std), biases ~ N(0, bias_std), LayerNorm weight ~ 1 + N(0, ln_std),
    LayerNorm bias ~ N(0, bias_std)."""
    sd = {}
    for name, shape, kind in shapes:
        z = normal(shape)
        if kind == "weight":
            a = z * std
        elif kind == "bias":
            a = z * bias_std
        elif kind == "ln_weight":
            a = 1.0 + z * ln_std
        else:
            a = z * bias_std
        sd[name] = np.asarray(a, dtype=np.float32)
    return sd


def pseudo_vocab(n, seed=0):
    """A WordPiece-looking vocabulary of exactly n entries: specials, pseudo-words, ##pieces."""
    if n < len(SPECIALS) + 1:
        raise ValueError("vocab size must be at least %d" % (len(SPECIALS) + 1))
    rng = np.random.RandomState(seed)
    onsets = ["", "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w",
              "br", "ch", "st", "tr", "pl", "sh"]
    vowels = ["a", "e", "i", "o", "u", "ea", "ou", "ai"]
    codas = ["", "n", "r", "s", "t", "l", "m", "ng", "st"]
    out = list(SPECIALS) + [".", ",", "!", "?", "'", "-"][: max(0, min(6, n - len(SPECIALS) - 1))]
    seen = set(out)
    n_pieces = (n - len(out)) // 5
    target_words = n - len(out) - n_pieces
    words, pieces = [], []
    while len(words) < target_words or len(pieces) < n_pieces:
        syl = int(rng.randint(1, 4))
        w = "".join(onsets[rng.randint(len(onsets))] + vowels[rng.randint(len(vowels))] +
                    codas[rng.randint(len(codas))] for _ in range(syl))
        if len(words) < target_words and w not in seen:
            seen.add(w)
            words.append(w)
        elif len(pieces) < n_pieces and ("##" + w) not in seen and len(w) <= 5:
            seen.add("##" + w)
            pieces.append("##" + w)
    out += words + pieces
    assert len(out) == n and len(set(out)) == n
    return out


def write_model_dir(out_dir, cfg, tensors, dtypes=None, vocab=None):
    """config.json (sorted, indented like transformers), model.safetensors, optional vocab.txt."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    reference_bert.write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors, dtypes)
    if vocab is not None:
        with open(os.path.join(out_dir, "vocab.txt"), "w", encoding="utf-8") as f:
            f.write("".join(t + "\n" for t in vocab))


def random_inputs(rng, cfg, batch, seq):
    """Random ragged batch: [CLS] ... [SEP] for bert/distilbert (ids 2/3), <s> ... </s> for roberta (0/2)."""
    bert = cfg["model_type"] in ("bert", "distilbert")
    cls_id, sep_id = (2, 3) if bert else (0, 2)
    pad = cfg["pad_token_id"]
    first = 5 if bert else 3
    ids, tt, am = [], [], []
    for b in range(batch):
        n = seq if b == 0 else int(rng.randint(3, seq + 1))
        body = [int(v) for v in rng.randint(first, cfg["vocab_size"], size=n - 2)]
        row = [cls_id] + body + [sep_id]
        types = [0] * n
        if bert and cfg.get("type_vocab_size", 0) > 1 and n >= 6 and b % 2 == 0:
            cut = n // 2
            row[cut - 1] = sep_id
            types = [0] * cut + [1] * (n - cut)
        ids.append(row + [pad] * (seq - n))
        tt.append(types + [0] * (seq - n))
        am.append([1] * n + [0] * (seq - n))
    return {"input_ids": ids, "token_type_ids": tt, "attention_mask": am}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--model-type", choices=["bert", "roberta", "distilbert"], default="bert")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=8000, help="vocabulary size (ignored with --vocab-file)")
    ap.add_argument("--vocab-file", help="copy this vocab.txt instead of generating pseudo-words")
    ap.add_argument("--max-pos", type=int, default=512)
    ap.add_argument("--type-vocab", type=int, default=None)
    ap.add_argument("--labels", type=int, default=2, help="number of labels (LABEL_0..)")
    ap.add_argument("--act", default="gelu", choices=["gelu", "gelu_new", "relu"])
    ap.add_argument("--dtype", default="F32", choices=["F32", "F16", "BF16"], help="storage dtype of float tensors")
    ap.add_argument("--std", default="auto",
                    help="weight std; auto = 1/sqrt(hidden) (keeps attention non-degenerate)")
    ap.add_argument("--no-head", action="store_true", help="bare encoder checkpoint (no classifier)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--inputs", help="also write a random input batch (JSON) here")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=32)
    args = ap.parse_args(argv)

    if args.vocab_file:
        with open(args.vocab_file, encoding="utf-8") as f:
            vocab = [line.rstrip("\n") for line in f]
        while vocab and vocab[-1] == "":
            vocab.pop()
    else:
        vocab = pseudo_vocab(args.vocab, args.seed)
    labels = ["LABEL_%d" % i for i in range(args.labels)]
    cfg = make_config(args.model_type, len(vocab), args.hidden, args.layers, args.heads, args.ffn,
                      args.max_pos, args.type_vocab, args.act, labels, head=not args.no_head)
    std = 1.0 / np.sqrt(args.hidden) if args.std == "auto" else float(args.std)
    gen = np.random.default_rng(args.seed)
    normal = lambda shape: gen.standard_normal(shape, dtype=np.float32)
    sd = random_state_dict(tensor_shapes(cfg, head=not args.no_head), normal, std)
    dtypes = {n: args.dtype for n in sd} if args.dtype != "F32" else None
    # RoBERTa tokenizers use vocab.json + merges.txt (BPE); a WordPiece vocab.txt would mislead.
    write_model_dir(args.out_dir, cfg, sd, dtypes, vocab if args.model_type != "roberta" else None)
    n_params = sum(a.size for a in sd.values())
    print("wrote %s: %d tensors, %.2fM parameters, std %.4g" % (args.out_dir, len(sd), n_params / 1e6, std))
    if args.inputs:
        seq = min(args.seq, args.max_pos - (cfg["pad_token_id"] + 1 if args.model_type == "roberta" else 0))
        inp = random_inputs(np.random.RandomState(args.seed + 1), cfg, args.batch, seq)
        with open(args.inputs, "w", encoding="utf-8") as f:
            json.dump(inp, f)
            f.write("\n")
        print("wrote %s: batch %d, seq %d" % (args.inputs, args.batch, seq))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
