"""Minimal safetensors reader and writer for PyTorch tensors.

The `safetensors` Python package is not installable on our machines (no
PyPI), so this writes the format as its reference implementation does: an
8-byte little-endian header length, a JSON header (tensors ordered by dtype
size, then name; "__metadata__" of strings), padded with spaces to a
multiple of 8, then each tensor's little-endian bytes, contiguous.
"""
import json
import struct

import torch

_DTYPES = {torch.float32: ("F32", 4), torch.float64: ("F64", 8), torch.int64: ("I64", 8), torch.int32: ("I32", 4), torch.uint8: ("U8", 1)}
_TORCH = {name: dt for dt, (name, _) in _DTYPES.items()}


def save_file(tensors, path, metadata=None):
    order = sorted(tensors.items(), key=lambda kv: (-_DTYPES[kv[1].dtype][1], kv[0]))
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in order:
        b = t.detach().contiguous().cpu().numpy().tobytes()
        header[name] = {"dtype": _DTYPES[t.dtype][0], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_file(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[base + b:base + end]), dtype=_TORCH[e["dtype"]])
        out[name] = t.reshape(e["shape"])
    return out, meta
