#!/usr/bin/env python3
"""Writes reference_small.safetensors by hand from the format description, independently of
moekit (and of the safetensors package): 8-byte little-endian header size, JSON header, bytes.

    python3 make_reference.py            # regenerate the fixture next to this script
    python3 make_reference.py --check F  # strict reference-style check of a file (e.g. one moekit wrote)

The fixture's values are asserted in tests/io/test_safetensors.cpp; keep the two in sync.
"""
import json
import os
import struct
import sys

import numpy as np


def bf16_bytes(values):
    # Values chosen exactly representable in bfloat16, so truncation is exact.
    f = np.asarray(values, dtype="<f4")
    return (f.view("<u4") >> 16).astype("<u2").tobytes()


def tensors():
    return {
        # Insertion order differs from name order on purpose: the reader must not care.
        "classifier.weight": ("F32", [2, 3], (np.arange(6, dtype="<f4") * 0.5 - 1.0).tobytes()),
        "classifier.bias": ("F16", [2], np.array([1.5, -0.25], dtype="<f2").tobytes()),
        "encoder.half": ("F16", [2, 2], np.array([65504.0, 2.0**-24, -0.0, 0.1], dtype="<f2").tobytes()),
        "encoder.bf16": ("BF16", [3], bf16_bytes([1.0, -2.0, 0.5])),
        "bert.embeddings.position_ids": ("I64", [1, 4], np.arange(4, dtype="<i8").tobytes()),
    }


def build():
    header, data = {}, b""
    for name, (dtype, shape, raw) in tensors().items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    header["__metadata__"] = {"format": "pt", "source": "make_reference.py"}
    text = json.dumps(header).encode("utf-8")  # ", " and ": " separators, unlike moekit's writer
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


SIZES = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4, "I64": 8, "I8": 1, "U8": 1}


def check(path):
    """The reference implementation's rules: padded header, contiguous data, exact sizes."""
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    assert n % 8 == 0 and 8 + n <= len(blob), "bad header length"
    header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    end = 0
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        b, f = e["data_offsets"]
        assert b == end, f"{name}: gap or overlap at {b}"
        assert f - b == int(np.prod(e["shape"], dtype=np.int64)) * SIZES[e["dtype"]], f"{name}: size"
        end = f
    assert 8 + n + end == len(blob), "data section not fully covered"
    print(f"ok: {path}: {len(header)} tensors, metadata {meta}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
    else:
        out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference_small.safetensors")
        with open(out, "wb") as f:
            f.write(build())
        check(out)
