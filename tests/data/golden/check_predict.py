#!/usr/bin/python3
"""Compare moekit `predict` output with the independent reference (reference_bert.py).

  check_predict.py MODEL_DIR PREDICT.jsonl INPUT.json [--tol 1e-4] [--key logits] [--dtype float64]

MODEL_DIR     Hugging Face model directory (config.json + model.safetensors), e.g. from make_model.py.
PREDICT.jsonl moekit's predict output, one JSON value per line and per input sequence, in input
              order: either an object holding the logits under --key (default "logits"; if it is
              absent, "probs"/"probabilities" are compared with softmax of the reference logits) and
              optionally a "label", or a bare list of logits. Blank lines are skipped.
INPUT.json    the same inputs as ids: a JSON object {"input_ids": [[...]], "token_type_ids": ...,
              "attention_mask": ...} (golden.json and make_model.py --inputs files qualify), or JSONL
              with one such object per line holding a single sequence. Missing type ids default to 0,
              a missing mask to 1 on every given id; ragged rows are padded.

Prints the max/mean abs difference, the worst row and argmax agreement; exits 1 if the max abs
difference exceeds --tol or a "label" disagrees with the reference argmax (near ties within
2*tol excepted), 2 on malformed input.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_bert  # noqa: E402


def read_inputs(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        obj = json.loads(text)
        rows = None
    except json.JSONDecodeError:
        obj = None
        rows = [json.loads(l) for l in text.splitlines() if l.strip()]
    if obj is not None and not isinstance(obj, list):
        ids = obj["input_ids"]
        if ids and isinstance(ids[0], int):  # one sequence
            return [{k: obj.get(k) for k in ("input_ids", "token_type_ids", "attention_mask")}]
        out = []
        for i in range(len(ids)):
            out.append({k: (obj[k][i] if obj.get(k) is not None else None)
                        for k in ("input_ids", "token_type_ids", "attention_mask")})
        return out
    rows = rows if rows is not None else obj
    return [{k: r.get(k) for k in ("input_ids", "token_type_ids", "attention_mask")} for r in rows]


def read_predictions(path, key):
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            v = json.loads(line)
            if isinstance(v, list):
                out.append(("logits", v, None))
            elif key in v:
                out.append(("logits", v[key], v.get("label")))
            elif "probs" in v or "probabilities" in v:
                out.append(("probs", v.get("probs", v.get("probabilities")), v.get("label")))
            else:
                raise ValueError("%s:%d: no %r (or probs) field in %s" % (path, n, key, line.strip()[:200]))
    return out


def reference_logits(model, seqs, dtype, chunk=32):
    res = []
    for s in range(0, len(seqs), chunk):
        part = seqs[s:s + chunk]
        inp = {"input_ids": [r["input_ids"] for r in part]}
        # Only pass type ids / masks when every row has them; fill the rest with defaults.
        inp["token_type_ids"] = [r["token_type_ids"] if r["token_type_ids"] is not None else [0] * len(r["input_ids"])
                                 for r in part]
        inp["attention_mask"] = [r["attention_mask"] if r["attention_mask"] is not None else [1] * len(r["input_ids"])
                                 for r in part]
        ids, tt, am = reference_bert.prepare_inputs(inp, model.pad)
        with torch.no_grad():
            out = model.forward(ids, tt, am, dtype=dtype)
        if out["logits"] is None:
            raise ValueError("the model has no classification head")
        res.append(out["logits"].double())
    return torch.cat(res)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("predictions")
    ap.add_argument("inputs")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--key", default="logits")
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    args = ap.parse_args(argv)
    try:
        model = reference_bert.load(args.model_dir)
        seqs = read_inputs(args.inputs)
        preds = read_predictions(args.predictions, args.key)
    except (OSError, ValueError, KeyError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    if len(preds) != len(seqs):
        print("error: %d predictions for %d input sequences" % (len(preds), len(seqs)), file=sys.stderr)
        return 2
    ref = reference_logits(model, seqs, torch.float64 if args.dtype == "float64" else torch.float32)
    labels = model.labels()
    worst, worst_row, total, n_vals, argmax_bad, label_bad = -1.0, -1, 0.0, 0, 0, 0
    for i, (kind, vals, label) in enumerate(preds):
        r = ref[i] if kind == "logits" else torch.softmax(ref[i], dim=0)
        got = torch.tensor(vals, dtype=torch.float64)
        if got.shape != r.shape:
            print("error: row %d has %d values, the model has %d labels" % (i, got.numel(), r.numel()), file=sys.stderr)
            return 2
        d = (got - r).abs()
        total += float(d.sum())
        n_vals += d.numel()
        if float(d.max()) > worst:
            worst, worst_row = float(d.max()), i
        argmax_bad += int(got.argmax()) != int(ref[i].argmax())
        top2 = torch.topk(ref[i], min(2, ref.shape[1])).values
        clear = top2.numel() < 2 or float(top2[0] - top2[1]) > 2 * args.tol  # not a near tie
        if label is not None and label != labels[int(ref[i].argmax())] and clear:
            label_bad += 1
    kind = preds[0][0] if preds else "logits"
    print("%d sequences, %d labels, compared %s: max abs diff %.3g (row %d), mean abs diff %.3g, "
          "argmax disagreements %d, label disagreements %d"
          % (len(preds), ref.shape[1], kind, worst, worst_row, total / max(n_vals, 1), argmax_bad, label_bad))
    if worst_row >= 0:
        print("worst row reference: %s" % json.dumps([round(v, 8) for v in ref[worst_row].tolist()]))
        print("worst row predicted: %s" % json.dumps(preds[worst_row][1]))
    ok = worst <= args.tol and label_bad == 0
    print("OK" if ok else "FAIL (tolerance %g)" % args.tol)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
