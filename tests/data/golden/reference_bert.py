#!/usr/bin/python3
"""Independent PyTorch reference for Hugging Face BertForSequenceClassification,
RobertaForSequenceClassification, XLMRobertaForSequenceClassification,
ElectraForSequenceClassification and DistilBertForSequenceClassification / DistilBertForMaskedLM
(eval mode), written from scratch.

It shares no code with moekit: it reads a Hugging Face model directory (config.json +
model.safetensors) with its own safetensors reader and recomputes the forward pass with
plain torch tensor ops, following transformers' modeling_bert.py / modeling_roberta.py / modeling_xlm_roberta.py /
modeling_electra.py / modeling_distilbert.py:

  embeddings   LayerNorm(word[ids] + token_type[type_ids] + position[pos]), eps = layer_norm_eps
               bert:    pos = 0..L-1
               roberta: pos = cumsum(ids != pad) * (ids != pad) + pad_token_id
                        (create_position_ids_from_input_ids: real tokens from pad+1, pads get pad)
  layer        scores = (x Wq^T + bq)(x Wk^T + bk)^T / sqrt(head_dim) + (1 - mask) * finfo(f32).min
               a   = LayerNorm(dense(softmax(scores) V) + x)          (attention.output)
               out = LayerNorm(output.dense(act(intermediate.dense(a))) + a)
               act: gelu = exact erf GELU, gelu_new / gelu_pytorch_tanh = tanh approx, relu
  bert head    logits = classifier(tanh(pooler.dense(h[:, 0])))
  roberta head logits = classifier.out_proj(tanh(classifier.dense(h[:, 0])))
  xlm-roberta  exactly RoBERTa (XLMRoberta* subclass the Roberta* modules; tensors `roberta.*`)
  electra      BERT embeddings (positions 0..L-1) of width embedding_size, then
               electra.embeddings_project (to hidden_size) when embedding_size != hidden_size;
               BERT layers under `electra.encoder.*`; no pooler; head (ElectraClassificationHead)
               logits = classifier.out_proj(gelu_erf(classifier.dense(h[:, 0])))
  distilbert   config keys dim / n_layers / n_heads / hidden_dim / activation; names under
               `distilbert.` (class DistilBertReference):
               x   = LayerNorm(word[ids] + position[0..L-1]), eps 1e-12 (no token types: ignored)
               q   = q_lin(x) / sqrt(head_dim); scores = q k^T, masked_fill(mask == 0, finfo(f32).min)
               sa  = sa_layer_norm(out_lin(softmax(scores) v) + x)
               x   = output_layer_norm(ffn.lin2(act(ffn.lin1(sa))) + sa)
               head   logits = classifier(relu(pre_classifier(h[:, 0])))
               MLM    vocab_projector(vocab_layer_norm(act(vocab_transform(h)))), the projector's
                      weight tied to the word embeddings (used when the file lacks it)

Dropout is the identity (eval). Checkpoint naming quirks handled like transformers' loader:
legacy LayerNorm `gamma`/`beta` names, a missing `bert.`/`roberta.` prefix (bare BertModel
checkpoints), and extra tensors (position_ids buffers, cls.predictions.*, a roberta pooler),
which are ignored.

Usage:
  reference_bert.py logits MODEL_DIR INPUT.json [--dtype float64|float32]
  reference_bert.py hidden MODEL_DIR INPUT.json [--dtype ...]      (last hidden states)
  reference_bert.py dump MODEL_DIR                                  (tensor names/dtypes/shapes)
INPUT.json: {"input_ids": [[...], ...], "token_type_ids": [[...]] (optional),
             "attention_mask": [[...]] (optional)}. Rows may be ragged; they are padded with
pad_token_id (mask 0). `logits` prints one JSON list per sequence.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch

# ----------------------------------------------------------------------------- safetensors

_NP_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_DTYPE_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
               "U8": 1, "BOOL": 1}


def f32_to_bf16_bits(a):
    """float32 array -> uint16 bfloat16 bit patterns, round to nearest even (as torch does)."""
    a = np.ascontiguousarray(a, dtype="<f4")
    if not np.all(np.isfinite(a)):
        raise ValueError("bf16 conversion: non-finite values are not supported here")
    u = a.view("<u4").astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype("<u2")


def bf16_bits_to_f32(bits):
    return (np.asarray(bits, dtype="<u2").astype("<u4") << 16).view("<f4")


def bf16_round(a):
    """Round a float array to the nearest bfloat16 value, returned as float32."""
    return bf16_bits_to_f32(f32_to_bf16_bits(np.asarray(a, dtype=np.float32)))


def _dtype_name(arr):
    for name, dt in _NP_DTYPES.items():
        if arr.dtype == dt or arr.dtype == dt.newbyteorder("="):
            return name
    raise ValueError("unsupported numpy dtype %s" % arr.dtype)


def write_safetensors(path, tensors, dtypes=None, metadata=None):
    """Write `tensors` (name -> numpy array) as a safetensors file.

    `dtypes` optionally maps a name to a safetensors dtype to store it as ("F16", "BF16", ...);
    float arrays are converted (BF16 with round-to-nearest-even). Otherwise the dtype follows the
    array. Like the safetensors library, data are laid out by dtype size (largest first) then by
    name, so every tensor is aligned to its element size; the JSON header lists `__metadata__`
    first, then tensors in data order, and is padded with spaces to a multiple of 8 bytes.
    """
    dtypes = dict(dtypes or {})
    entries = []
    for name, arr in tensors.items():
        arr = np.asarray(arr)
        dt = dtypes.pop(name, None) or _dtype_name(arr)
        if dt == "BF16":
            raw = f32_to_bf16_bits(arr).tobytes()
        else:
            raw = np.ascontiguousarray(arr, dtype=_NP_DTYPES[dt]).tobytes()
        assert len(raw) == _DTYPE_SIZE[dt] * int(np.prod(arr.shape, dtype=np.int64))
        entries.append((name, dt, [int(s) for s in arr.shape], raw))
    if dtypes:
        raise KeyError("dtypes given for unknown tensors: %s" % sorted(dtypes))
    entries.sort(key=lambda e: (-_DTYPE_SIZE[e[1]], e[0]))
    header = {"__metadata__": dict(metadata or {"format": "pt"})}
    offset = 0
    for name, dt, shape, raw in entries:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((-len(hjson)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for _, _, _, raw in entries:
            f.write(raw)


def read_safetensors(path):
    """Read a safetensors file. Returns (tensors, dtypes, metadata): name -> numpy array
    (BF16 widened to float32, everything else in its stored dtype), name -> dtype string."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError("%s: too short for a safetensors file" % path)
    (hlen,) = struct.unpack("<Q", blob[:8])
    if 8 + hlen > len(blob):
        raise ValueError("%s: header length %d exceeds file size" % (path, hlen))
    header = json.loads(blob[8:8 + hlen].decode("utf-8"))
    data = memoryview(blob)[8 + hlen:]
    metadata = header.pop("__metadata__", {})
    tensors, dtypes = {}, {}
    spans = []
    for name, info in header.items():
        dt, shape, (a, b) = info["dtype"], info["shape"], info["data_offsets"]
        n = int(np.prod(shape, dtype=np.int64))
        if dt not in _DTYPE_SIZE:
            raise ValueError("%s: tensor %s has unsupported dtype %s" % (path, name, dt))
        if b - a != n * _DTYPE_SIZE[dt] or a < 0 or b > len(data):
            raise ValueError("%s: tensor %s has bad data_offsets %s" % (path, name, [a, b]))
        spans.append((a, b))
        raw = data[a:b]
        if dt == "BF16":
            arr = bf16_bits_to_f32(np.frombuffer(raw, dtype="<u2"))
        else:
            arr = np.frombuffer(raw, dtype=_NP_DTYPES[dt]).copy()
        tensors[name] = arr.reshape(shape)
        dtypes[name] = dt
    spans.sort()
    pos = 0
    for a, b in spans:  # the format requires the data buffer to be fully and exactly covered
        if a != pos:
            raise ValueError("%s: data buffer has a hole or overlap at byte %d" % (path, a))
        pos = b
    if pos != len(data):
        raise ValueError("%s: %d trailing bytes after the last tensor" % (path, len(data) - pos))
    return tensors, dtypes, metadata


# ----------------------------------------------------------------------------- model

def _act(name):
    if name == "gelu":
        return lambda x: 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        c = math.sqrt(2.0 / math.pi)
        return lambda x: 0.5 * x * (1.0 + torch.tanh(c * (x + 0.044715 * torch.pow(x, 3.0))))
    if name == "relu":
        return lambda x: torch.clamp(x, min=0.0)
    raise ValueError("unsupported hidden_act %r" % name)


def _layer_norm(x, w, b, eps):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)  # biased variance, as nn.LayerNorm
    return (x - mean) / torch.sqrt(var + eps) * w + b


def _linear(x, w, b):
    return torch.matmul(x, w.t()) + b


def normalize_state_dict(raw, model_type):
    """Map checkpoint tensor names to canonical HF names `<model_type>.…`, `classifier.…`.

    Mirrors transformers' loading: `.gamma`/`.beta` -> `.weight`/`.bias`; when no tensor carries
    the base-model prefix, the prefix is added to every non-head tensor. Returns a new dict."""
    return {new: raw[old] for old, new in canonical_names(raw, model_type).items()}


def canonical_names(names, model_type):
    """checkpoint name -> canonical name (see normalize_state_dict)."""
    prefix = _prefix(model_type)
    out = {}
    for orig in names:
        name = orig
        if name.endswith(".gamma"):
            name = name[: -len(".gamma")] + ".weight"
        elif name.endswith(".beta"):
            name = name[: -len(".beta")] + ".bias"
        out[orig] = name
    heads = ("classifier", "cls", "lm_head", "pre_classifier", "vocab_transform", "vocab_layer_norm",
             "vocab_projector")
    if not any(n.startswith(prefix) for n in out.values()):
        out = {o: (n if n.split(".")[0] in heads else prefix + n) for o, n in out.items()}
    if len(set(out.values())) != len(out):
        raise ValueError("checkpoint names collide after normalization")
    return out


def _prefix(model_type):
    return "roberta." if model_type == "xlm-roberta" else model_type + "."


class Reference:
    """Forward pass of Bert/RobertaForSequenceClassification from a state dict."""

    def __init__(self, config, state_dict):
        self.config = config
        self.model_type = config.get("model_type", "bert")
        if self.model_type not in ("bert", "roberta", "xlm-roberta", "electra"):
            raise ValueError("unsupported model_type %r" % self.model_type)
        # The position and head conventions: BERT's, or RoBERTa's (XLM-R is RoBERTa).
        self.roberta = self.model_type in ("roberta", "xlm-roberta")
        self.prefix = _prefix(self.model_type)
        self.project = (self.model_type == "electra" and
                        int(config.get("embedding_size", config["hidden_size"])) != int(config["hidden_size"]))
        self.sd = normalize_state_dict(state_dict, self.model_type)
        self.hidden = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.pad = int(config.get("pad_token_id", 0))
        self.act = _act(config.get("hidden_act", "gelu"))
        if self.model_type == "bert":
            self.has_head = "classifier.weight" in self.sd
        else:
            self.has_head = "classifier.out_proj.weight" in self.sd
        # Fail early on anything the encoder needs.
        for n in self.required_names():
            if n not in self.sd:
                raise KeyError("checkpoint lacks tensor %s" % n)
        self.used = set(self.required_names())
        # Checkpoint tensors the forward pass does not use, under their names in the file.
        self.ignored = sorted(o for o, n in canonical_names(state_dict, self.model_type).items()
                              if n not in self.used)
        self._cache = {}

    def required_names(self):
        p = self.prefix
        names = [p + "embeddings.word_embeddings.weight", p + "embeddings.position_embeddings.weight",
                 p + "embeddings.token_type_embeddings.weight", p + "embeddings.LayerNorm.weight",
                 p + "embeddings.LayerNorm.bias"]
        if self.project:
            names += [p + "embeddings_project.weight", p + "embeddings_project.bias"]
        for i in range(self.layers):
            q = "%sencoder.layer.%d." % (p, i)
            for m in ("attention.self.query", "attention.self.key", "attention.self.value",
                      "attention.output.dense", "attention.output.LayerNorm", "intermediate.dense",
                      "output.dense", "output.LayerNorm"):
                names += [q + m + ".weight", q + m + ".bias"]
        if self.model_type == "bert":
            names += [p + "pooler.dense.weight", p + "pooler.dense.bias"]
            if self.has_head:
                names += ["classifier.weight", "classifier.bias"]
        elif self.has_head:
            names += ["classifier.dense.weight", "classifier.dense.bias",
                      "classifier.out_proj.weight", "classifier.out_proj.bias"]
        return names

    def _t(self, name, dtype):
        key = (name, dtype)
        if key not in self._cache:
            self._cache[key] = torch.from_numpy(np.asarray(self.sd[name], dtype=np.float64)).to(dtype)
        return self._cache[key]

    def position_ids(self, input_ids):
        L = input_ids.shape[1]
        if self.roberta:
            m = input_ids.ne(self.pad).long()
            return torch.cumsum(m, dim=1) * m + self.pad
        return torch.arange(L, dtype=torch.long).unsqueeze(0).expand_as(input_ids)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, dtype=torch.float64):
        """Returns dict(last_hidden=[B,L,H], pooled=[B,H] or None, logits=[B,C] or None)."""
        ids = torch.as_tensor(input_ids, dtype=torch.long)
        if ids.dim() != 2:
            raise ValueError("input_ids must be [batch, seq]")
        tt = torch.zeros_like(ids) if token_type_ids is None else torch.as_tensor(token_type_ids, dtype=torch.long)
        mask = torch.ones_like(ids) if attention_mask is None else torch.as_tensor(attention_mask, dtype=torch.long)
        B, L = ids.shape
        p = self.prefix
        t = lambda n: self._t(n, dtype)

        pos = self.position_ids(ids)
        x = t(p + "embeddings.word_embeddings.weight")[ids]
        x = x + t(p + "embeddings.token_type_embeddings.weight")[tt]
        x = x + t(p + "embeddings.position_embeddings.weight")[pos]
        x = _layer_norm(x, t(p + "embeddings.LayerNorm.weight"), t(p + "embeddings.LayerNorm.bias"), self.eps)
        if self.project:
            x = _linear(x, t(p + "embeddings_project.weight"), t(p + "embeddings_project.bias"))

        # get_extended_attention_mask: [B,1,1,L], 0 for keep, finfo(float32).min for masked.
        ext = (1.0 - mask.to(dtype))[:, None, None, :] * torch.finfo(torch.float32).min
        hd = self.hidden // self.heads
        for i in range(self.layers):
            q = "%sencoder.layer.%d." % (p, i)
            lin = lambda inp, m: _linear(inp, t(q + m + ".weight"), t(q + m + ".bias"))
            split = lambda z: z.view(B, L, self.heads, hd).permute(0, 2, 1, 3)
            Q = split(lin(x, "attention.self.query"))
            K = split(lin(x, "attention.self.key"))
            V = split(lin(x, "attention.self.value"))
            scores = torch.matmul(Q, K.transpose(-1, -2)) / math.sqrt(hd) + ext
            probs = torch.softmax(scores, dim=-1)
            ctx = torch.matmul(probs, V).permute(0, 2, 1, 3).reshape(B, L, self.hidden)
            a = _layer_norm(lin(ctx, "attention.output.dense") + x,
                            t(q + "attention.output.LayerNorm.weight"), t(q + "attention.output.LayerNorm.bias"), self.eps)
            h = self.act(lin(a, "intermediate.dense"))
            x = _layer_norm(lin(h, "output.dense") + a,
                            t(q + "output.LayerNorm.weight"), t(q + "output.LayerNorm.bias"), self.eps)

        out = {"last_hidden": x, "pooled": None, "logits": None}
        cls = x[:, 0]
        if self.model_type == "bert":
            pooled = torch.tanh(_linear(cls, t(p + "pooler.dense.weight"), t(p + "pooler.dense.bias")))
            out["pooled"] = pooled
            if self.has_head:
                out["logits"] = _linear(pooled, t("classifier.weight"), t("classifier.bias"))
        elif self.has_head:
            dense = _linear(cls, t("classifier.dense.weight"), t("classifier.dense.bias"))
            # ElectraClassificationHead uses gelu ("although BERT uses tanh here"), RoBERTa tanh.
            z = _act("gelu")(dense) if self.model_type == "electra" else torch.tanh(dense)
            out["logits"] = _linear(z, t("classifier.out_proj.weight"), t("classifier.out_proj.bias"))
        return out

    def labels(self):
        id2label = self.config.get("id2label")
        if id2label:
            return [id2label[str(i)] for i in range(len(id2label))]
        return ["LABEL_%d" % i for i in range(int(self.config.get("num_labels", 2)))]


class DistilBertReference:
    """Forward pass of DistilBertForSequenceClassification (and DistilBertForMaskedLM's head) from a
    state dict, with DistilBertConfig's keys. Same interface as Reference."""

    def __init__(self, config, state_dict):
        self.config = config
        self.model_type = "distilbert"
        if config.get("sinusoidal_pos_embds", False):
            raise ValueError("sinusoidal_pos_embds is not supported by this reference")
        self.prefix = "distilbert."
        self.sd = normalize_state_dict(state_dict, self.model_type)
        self.dim = int(config["dim"])
        self.heads = int(config["n_heads"])
        self.layers = int(config["n_layers"])
        self.eps = 1e-12  # DistilBERT's LayerNorms fix eps
        self.pad = int(config.get("pad_token_id", 0))
        self.act = _act(config.get("activation", "gelu"))
        self.has_head = "classifier.weight" in self.sd
        self.has_mlm = "vocab_transform.weight" in self.sd
        for n in self.required_names():
            if n not in self.sd:
                raise KeyError("checkpoint lacks tensor %s" % n)
        used = set(self.required_names())
        self.ignored = sorted(o for o, n in canonical_names(state_dict, self.model_type).items() if n not in used)
        self._cache = {}

    def required_names(self):
        p = self.prefix
        names = [p + "embeddings.word_embeddings.weight", p + "embeddings.position_embeddings.weight",
                 p + "embeddings.LayerNorm.weight", p + "embeddings.LayerNorm.bias"]
        for i in range(self.layers):
            q = "%stransformer.layer.%d." % (p, i)
            for m in ("attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin", "sa_layer_norm",
                      "ffn.lin1", "ffn.lin2", "output_layer_norm"):
                names += [q + m + ".weight", q + m + ".bias"]
        if self.has_head:
            names += ["pre_classifier.weight", "pre_classifier.bias", "classifier.weight", "classifier.bias"]
        if self.has_mlm:
            names += ["vocab_transform.weight", "vocab_transform.bias", "vocab_layer_norm.weight",
                      "vocab_layer_norm.bias", "vocab_projector.bias"]
            if "vocab_projector.weight" in self.sd:
                names.append("vocab_projector.weight")
        return names

    def _t(self, name, dtype):
        key = (name, dtype)
        if key not in self._cache:
            self._cache[key] = torch.from_numpy(np.asarray(self.sd[name], dtype=np.float64)).to(dtype)
        return self._cache[key]

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, dtype=torch.float64):
        """Returns dict(last_hidden=[B,L,H], pooled=None, logits=[B,C] or None, mlm_logits=[B,L,V]
        or None). token_type_ids are accepted and ignored (DistilBERT has none)."""
        ids = torch.as_tensor(input_ids, dtype=torch.long)
        if ids.dim() != 2:
            raise ValueError("input_ids must be [batch, seq]")
        mask = torch.ones_like(ids) if attention_mask is None else torch.as_tensor(attention_mask, dtype=torch.long)
        B, L = ids.shape
        p = self.prefix
        t = lambda n: self._t(n, dtype)
        pos = torch.arange(L, dtype=torch.long).unsqueeze(0).expand_as(ids)
        x = t(p + "embeddings.word_embeddings.weight")[ids] + t(p + "embeddings.position_embeddings.weight")[pos]
        x = _layer_norm(x, t(p + "embeddings.LayerNorm.weight"), t(p + "embeddings.LayerNorm.bias"), self.eps)
        hd = self.dim // self.heads
        keep = (mask != 0)[:, None, None, :]  # [B,1,1,L]
        for i in range(self.layers):
            q = "%stransformer.layer.%d." % (p, i)
            lin = lambda inp, m: _linear(inp, t(q + m + ".weight"), t(q + m + ".bias"))
            ln = lambda inp, m: _layer_norm(inp, t(q + m + ".weight"), t(q + m + ".bias"), self.eps)
            split = lambda z: z.view(B, L, self.heads, hd).transpose(1, 2)
            Q = split(lin(x, "attention.q_lin")) / math.sqrt(hd)
            K = split(lin(x, "attention.k_lin"))
            V = split(lin(x, "attention.v_lin"))
            scores = torch.matmul(Q, K.transpose(2, 3))
            scores = scores.masked_fill(~keep, torch.finfo(torch.float32).min)
            ctx = torch.matmul(torch.softmax(scores, dim=-1), V).transpose(1, 2).reshape(B, L, self.dim)
            sa = ln(lin(ctx, "attention.out_lin") + x, "sa_layer_norm")
            x = ln(lin(self.act(lin(sa, "ffn.lin1")), "ffn.lin2") + sa, "output_layer_norm")
        out = {"last_hidden": x, "pooled": None, "logits": None, "mlm_logits": None}
        if self.has_head:
            pre = torch.clamp(_linear(x[:, 0], t("pre_classifier.weight"), t("pre_classifier.bias")), min=0.0)
            out["logits"] = _linear(pre, t("classifier.weight"), t("classifier.bias"))
        if self.has_mlm:
            h = self.act(_linear(x, t("vocab_transform.weight"), t("vocab_transform.bias")))
            h = _layer_norm(h, t("vocab_layer_norm.weight"), t("vocab_layer_norm.bias"), self.eps)
            proj = "vocab_projector.weight" if "vocab_projector.weight" in self.sd else p + "embeddings.word_embeddings.weight"
            out["mlm_logits"] = _linear(h, t(proj), t("vocab_projector.bias"))
        return out

    def labels(self):
        return Reference.labels(self)


def load(model_dir):
    """Load config.json + model.safetensors from `model_dir` into a Reference (DistilBertReference
    for model_type distilbert)."""
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    tensors, _, _ = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    if config.get("model_type") == "distilbert":
        return DistilBertReference(config, tensors)
    return Reference(config, tensors)


def prepare_inputs(inp, pad_token_id):
    """Pad ragged input lists into [B, L] int lists; defaults: type ids 0, mask 1 on real tokens."""
    ids = inp["input_ids"]
    if ids and isinstance(ids[0], int):
        ids = [ids]
    L = max(len(r) for r in ids)
    tt = inp.get("token_type_ids")
    am = inp.get("attention_mask")
    if tt is not None and tt and isinstance(tt[0], int):
        tt = [tt]
    if am is not None and am and isinstance(am[0], int):
        am = [am]
    out_ids, out_tt, out_am = [], [], []
    for i, r in enumerate(ids):
        n = len(r)
        out_ids.append(list(r) + [pad_token_id] * (L - n))
        out_tt.append((list(tt[i]) if tt is not None else [0] * n) + [0] * (L - n))
        out_am.append((list(am[i]) if am is not None else [1] * n) + [0] * (L - n))
    return out_ids, out_tt, out_am


def _main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["logits", "hidden", "dump"])
    ap.add_argument("model_dir")
    ap.add_argument("input", nargs="?")
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    args = ap.parse_args(argv)
    if args.command == "dump":
        tensors, dtypes, meta = read_safetensors(os.path.join(args.model_dir, "model.safetensors"))
        print(json.dumps({"__metadata__": meta}))
        for n in sorted(tensors):
            print("%-60s %-5s %s" % (n, dtypes[n], list(tensors[n].shape)))
        return 0
    if not args.input:
        ap.error("INPUT.json is required")
    model = load(args.model_dir)
    with open(args.input, encoding="utf-8") as f:
        inp = json.load(f)
    ids, tt, am = prepare_inputs(inp, model.pad)
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    with torch.no_grad():
        out = model.forward(ids, tt, am, dtype=dtype)
    if args.command == "logits":
        if out["logits"] is None:
            print("error: %s has no classification head" % args.model_dir, file=sys.stderr)
            return 1
        for row in out["logits"].tolist():
            print(json.dumps(row))
    else:
        for row in out["last_hidden"].tolist():
            print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
