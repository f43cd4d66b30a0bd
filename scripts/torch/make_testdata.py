"""Writes testdata/torch_small.safetensors and testdata/torch_small.json.

A small torch.nn.Sequential (convolution, batch norm, ReLU, max-pool,
flatten, dense layers) trained briefly on 2,000 MNIST training images (so
that its classes are clear-cut), saved as PyTorch's state_dict with its
running statistics; and its predictions (log-probabilities and classes) on
the first 32 MNIST test images, computed by PyTorch. TestLoadPyTorchFile builds the same network
with vat.Sequential, loads the file and compares.

    /usr/bin/python3 scripts/torch/make_testdata.py <folder with t10k-images-idx3-ubyte.gz>
"""
import gzip
import json
import os
import struct
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(__file__))
from st import save_file  # noqa: E402


def read_labels(path, n):
    with gzip.open(path, "rb") as f:
        f.read(8)
        return torch.tensor(list(f.read(n)), dtype=torch.int64)


def read_images(path, n):
    with gzip.open(path, "rb") as f:
        _, count, rows, cols = struct.unpack(">IIII", f.read(16))
        raw = f.read(n * rows * cols)
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).float().div(255).reshape(n, 1, rows, cols)


def main():
    torch.manual_seed(20261127)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4, eps=1e-3, momentum=0.01), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * 13 * 13, 16), nn.BatchNorm1d(16, eps=1e-3, momentum=0.01), nn.ReLU(),
        nn.Linear(16, 10))
    x = read_images(os.path.join(sys.argv[1], "t10k-images-idx3-ubyte.gz"), 32)
    tx = read_images(os.path.join(sys.argv[1], "train-images-idx3-ubyte.gz"), 2000)
    ty = read_labels(os.path.join(sys.argv[1], "train-labels-idx1-ubyte.gz"), 2000)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    net.train()
    for epoch in range(3):
        for i in range(0, 2000, 50):
            opt.zero_grad()
            nn.functional.cross_entropy(net(tx[i:i + 50]), ty[i:i + 50]).backward()
            opt.step()
    with torch.no_grad():  # momentum 0.01 (Keras' 0.99) needs many batches to settle the running statistics
        for k in range(10):
            for i in range(0, 2000, 50):
                net(tx[i:i + 50])
    net.eval()
    with torch.no_grad():
        logp = torch.log_softmax(net(x), dim=1)
    out = os.path.join(os.path.dirname(__file__), "..", "..", "testdata")
    save_file(net.state_dict(), os.path.join(out, "torch_small.safetensors"), {"written_by": "scripts/torch/make_testdata.py, torch " + torch.__version__})
    with open(os.path.join(out, "torch_small.json"), "w") as f:
        json.dump({"torch": torch.__version__, "images": "first 32 MNIST test images",
                   "log_probs": [[float(v) for v in row] for row in logp], "classes": logp.argmax(1).tolist()}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
