#!/usr/bin/python3
"""Cross-check reference_bert.py against a second computation path built from torch.nn modules
(nn.TransformerEncoderLayer with nn.MultiheadAttention, F.layer_norm, F.gelu, F.embedding) in
float64, and check the committed golden.json files against the reference.

  /usr/bin/python3 tests/data/golden/crosscheck.py [FIXTURE_DIR ...]   (default: all eight)

A FIXTURE_DIR needs golden.json with at least input_ids/token_type_ids/attention_mask (an input
file from make_model.py --inputs copied there works); its outputs are compared when present.

Exits non-zero on any mismatch above 1e-9 (float64 vs float64).
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference_bert  # noqa: E402

TOL = 1e-9


def alt_forward(ref, ids, tt, mask):
    """Same model via torch.nn building blocks; returns (last_hidden, logits or None)."""
    cfg, sd, mt = ref.config, ref.sd, ref.model_type
    g = lambda n: torch.from_numpy(np.asarray(sd[n], dtype=np.float64))
    p = ref.prefix
    H, nh, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    ids = torch.tensor(ids)
    tt = torch.tensor(tt)
    mask = torch.tensor(mask)
    B, L = ids.shape
    if ref.roberta:  # roberta, xlm-roberta: positions by an explicit loop rather than cumsum
        pad = cfg["pad_token_id"]
        pos = torch.empty_like(ids)
        for b in range(B):
            k = pad
            for j in range(L):
                if int(ids[b, j]) != pad:
                    k += 1
                    pos[b, j] = k
                else:
                    pos[b, j] = pad
    else:
        pos = torch.arange(L).repeat(B, 1)
    x = (F.embedding(ids, g(p + "embeddings.word_embeddings.weight"))
         + F.embedding(pos, g(p + "embeddings.position_embeddings.weight"))
         + F.embedding(tt, g(p + "embeddings.token_type_embeddings.weight")))
    E = x.shape[-1]  # ELECTRA's embedding_size
    x = F.layer_norm(x, (E,), g(p + "embeddings.LayerNorm.weight"), g(p + "embeddings.LayerNorm.bias"), eps)
    if E != H:
        x = F.linear(x, g(p + "embeddings_project.weight"), g(p + "embeddings_project.bias"))
    act = {"gelu": F.gelu, "relu": F.relu,
           "gelu_new": lambda z: F.gelu(z, approximate="tanh")}[cfg["hidden_act"]]
    for i in range(cfg["num_hidden_layers"]):
        q = "%sencoder.layer.%d." % (p, i)
        layer = torch.nn.TransformerEncoderLayer(H, nh, cfg["intermediate_size"], dropout=0.0, activation=act,
                                                 layer_norm_eps=eps, batch_first=True, norm_first=False)
        layer = layer.double().eval()
        with torch.no_grad():
            sa = layer.self_attn
            sa.in_proj_weight.copy_(torch.cat([g(q + "attention.self.%s.weight" % m) for m in ("query", "key", "value")]))
            sa.in_proj_bias.copy_(torch.cat([g(q + "attention.self.%s.bias" % m) for m in ("query", "key", "value")]))
            sa.out_proj.weight.copy_(g(q + "attention.output.dense.weight"))
            sa.out_proj.bias.copy_(g(q + "attention.output.dense.bias"))
            layer.norm1.weight.copy_(g(q + "attention.output.LayerNorm.weight"))
            layer.norm1.bias.copy_(g(q + "attention.output.LayerNorm.bias"))
            layer.linear1.weight.copy_(g(q + "intermediate.dense.weight"))
            layer.linear1.bias.copy_(g(q + "intermediate.dense.bias"))
            layer.linear2.weight.copy_(g(q + "output.dense.weight"))
            layer.linear2.bias.copy_(g(q + "output.dense.bias"))
            layer.norm2.weight.copy_(g(q + "output.LayerNorm.weight"))
            layer.norm2.bias.copy_(g(q + "output.LayerNorm.bias"))
            x = layer(x, src_key_padding_mask=(mask == 0))
    logits = None
    cls = x[:, 0]
    if mt == "bert":
        pooled = torch.tanh(F.linear(cls, g(p + "pooler.dense.weight"), g(p + "pooler.dense.bias")))
        if ref.has_head:
            logits = F.linear(pooled, g("classifier.weight"), g("classifier.bias"))
    elif ref.has_head:
        z = F.linear(cls, g("classifier.dense.weight"), g("classifier.dense.bias"))
        z = F.gelu(z) if mt == "electra" else torch.tanh(z)
        logits = F.linear(z, g("classifier.out_proj.weight"), g("classifier.out_proj.bias"))
    return x, logits


def encoder_layer(H, nh, ffn, act, eps, get, names):
    """An nn.TransformerEncoderLayer (post-LN, eval, float64) loaded from one layer's tensors;
    names: (query, key, value, attention out, attention LayerNorm, W1, W2, FFN LayerNorm)."""
    layer = torch.nn.TransformerEncoderLayer(H, nh, ffn, dropout=0.0, activation=act, layer_norm_eps=eps,
                                             batch_first=True, norm_first=False).double().eval()
    q, k, v, out, norm1, lin1, lin2, norm2 = names
    with torch.no_grad():
        for part in ("weight", "bias"):
            getattr(layer.self_attn, "in_proj_" + part).copy_(torch.cat([get(n + "." + part) for n in (q, k, v)]))
            for module, n in ((layer.self_attn.out_proj, out), (layer.norm1, norm1), (layer.linear1, lin1),
                              (layer.linear2, lin2), (layer.norm2, norm2)):
                getattr(module, part).copy_(get(n + "." + part))
    return layer


def alt_forward_distilbert(ref, ids, mask):
    """DistilBERT via torch.nn building blocks; returns (last_hidden, logits or None, mlm_logits or None)."""
    cfg, sd, p = ref.config, ref.sd, ref.prefix
    g = lambda n: torch.from_numpy(np.asarray(sd[n], dtype=np.float64))
    ids, mask = torch.tensor(ids), torch.tensor(mask)
    H = cfg["dim"]
    pos = torch.arange(ids.shape[1]).repeat(ids.shape[0], 1)
    x = F.embedding(ids, g(p + "embeddings.word_embeddings.weight")) + F.embedding(pos, g(p + "embeddings.position_embeddings.weight"))
    x = F.layer_norm(x, (H,), g(p + "embeddings.LayerNorm.weight"), g(p + "embeddings.LayerNorm.bias"), 1e-12)
    act = {"gelu": F.gelu, "relu": F.relu, "gelu_new": lambda z: F.gelu(z, approximate="tanh")}[cfg["activation"]]
    for i in range(cfg["n_layers"]):
        q = "%stransformer.layer.%d." % (p, i)
        names = [q + n for n in ("attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin",
                                 "sa_layer_norm", "ffn.lin1", "ffn.lin2", "output_layer_norm")]
        layer = encoder_layer(H, cfg["n_heads"], cfg["hidden_dim"], act, 1e-12, g, names)
        with torch.no_grad():
            x = layer(x, src_key_padding_mask=(mask == 0))
    logits = mlm = None
    if ref.has_head:
        logits = F.linear(F.relu(F.linear(x[:, 0], g("pre_classifier.weight"), g("pre_classifier.bias"))),
                          g("classifier.weight"), g("classifier.bias"))
    if ref.has_mlm:
        t = F.layer_norm(act(F.linear(x, g("vocab_transform.weight"), g("vocab_transform.bias"))), (H,),
                         g("vocab_layer_norm.weight"), g("vocab_layer_norm.bias"), 1e-12)
        mlm = F.linear(t, g(p + "embeddings.word_embeddings.weight"), g("vocab_projector.bias"))
    return x, logits, mlm


def check_dtype_conversions():
    rs = np.random.RandomState(0)
    a = (rs.standard_normal(10000) * np.exp(rs.uniform(-20, 20, 10000))).astype(np.float32)
    mine = reference_bert.f32_to_bf16_bits(a)
    theirs = torch.from_numpy(a).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(mine, theirs), "bf16 rounding differs from torch"
    back = reference_bert.bf16_bits_to_f32(mine)
    assert np.array_equal(back, torch.from_numpy(a).to(torch.bfloat16).float().numpy()), "bf16 widening differs"
    print("bf16 conversion matches torch on 10000 values")


def check_reader(model_dir):
    """Decode every tensor a second way (torch.frombuffer on the raw bytes) and compare."""
    path = os.path.join(model_dir, "model.safetensors")
    blob = open(path, "rb").read()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    header.pop("__metadata__", None)
    tensors, _, _ = reference_bert.read_safetensors(path)
    tdt = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64}
    for name, info in header.items():
        a, b = info["data_offsets"]
        t = torch.frombuffer(bytearray(blob[8 + n + a:8 + n + b]), dtype=tdt[info["dtype"]]).reshape(info["shape"])
        t = t.double() if t.is_floating_point() else t
        if not np.array_equal(t.numpy(), np.asarray(tensors[name], dtype=t.numpy().dtype)):
            raise AssertionError("%s: %s decodes differently" % (path, name))


def main(dirs):
    torch.manual_seed(0)
    check_dtype_conversions()
    dirs = dirs or [os.path.join(HERE, d) for d in ("bert_tiny", "bert_tiny_variant", "roberta_tiny", "bert_tiny_noclf",
                                                   "xlmr_tiny", "electra_tiny", "distilbert_tiny",
                                                   "distilbert_tiny_mlm")]
    bad = 0
    for d in dirs:
        check_reader(d)
        ref = reference_bert.load(d)
        with open(os.path.join(d, "golden.json"), encoding="utf-8") as f:
            gold = json.load(f)
        ids, tt, mask = gold["input_ids"], gold["token_type_ids"], gold["attention_mask"]
        with torch.no_grad():
            out = ref.forward(ids, tt, mask, dtype=torch.float64)
            if ref.model_type == "distilbert":
                h2, l2, mlm2 = alt_forward_distilbert(ref, ids, mask)
            else:
                (h2, l2), mlm2 = alt_forward(ref, ids, tt, mask), None
        m = torch.tensor(mask, dtype=torch.bool)
        dh = float((out["last_hidden"] - h2)[m].abs().max())
        dl = float((out["logits"] - l2).abs().max()) if l2 is not None else 0.0
        if mlm2 is not None:  # MLM logits count as logits: nn path vs reference here, golden.json below
            dl = max(dl, float((out["mlm_logits"] - mlm2)[m].abs().max()))
        # golden.json (rounded to 12 significant digits) vs a fresh reference run
        gh = (float((out["last_hidden"].reshape(-1) - torch.tensor(gold["last_hidden"], dtype=torch.float64)).abs().max())
              if "last_hidden" in gold else 0.0)
        gl = float((out["logits"] - torch.tensor(gold["logits"], dtype=torch.float64)).abs().max()) if "logits" in gold else 0.0
        if "mlm_logits" in gold:  # sequence 0's
            gm = torch.tensor(gold["mlm_logits"], dtype=torch.float64).reshape(gold["mlm_logits_shape"])
            gl = max(gl, float((out["mlm_logits"][0] - gm).abs().max()))
        ok = max(dh, dl, gh, gl) < TOL
        bad += not ok
        print("%-20s nn-modules vs reference: hidden %.1e logits %.1e | golden.json vs reference: hidden %.1e logits %.1e  %s"
              % (os.path.basename(d.rstrip("/")), dh, dl, gh, gl, "ok" if ok else "MISMATCH"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
