"""Loads weights that examples/mnist saved for the preset (Keras' MNIST CNN)
into the PyTorch peer's module (conv1, conv2, fc1, fc2) with
load_state_dict, and prints its test accuracy and mean cross-entropy on the
10,000 MNIST test images: the figures `go run ./examples/mnist -load FILE`
prints. With a second argument, a file of one predicted class per line,
it also counts the test images where PyTorch predicts another class.

    /usr/bin/python3 scripts/torch/check_preset.py out/vat.safetensors <MNIST folder> [go-classes.txt]
"""
import gzip
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from st import load_file  # noqa: E402


class Net(nn.Module):  # ../shared/peer/pytorch_vat.py's module
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 32, 3)
        self.fc1 = nn.Linear(4608, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


def main():
    state, meta = load_file(sys.argv[1])
    print("header:", {k: v for k, v in meta.items() if k != "layers"})
    net = Net()
    net.load_state_dict(state)  # strict: every name and shape must match
    net.eval()
    with gzip.open(os.path.join(sys.argv[2], "t10k-images-idx3-ubyte.gz")) as f:
        _, n, r, c = struct.unpack(">IIII", f.read(16))
        x = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8).float().div(255).reshape(n, 1, r, c)
    with gzip.open(os.path.join(sys.argv[2], "t10k-labels-idx1-ubyte.gz")) as f:
        f.read(8)
        y = torch.tensor(list(f.read()), dtype=torch.int64)
    with torch.no_grad():
        logits = torch.cat([net(x[i:i + 1000]) for i in range(0, n, 1000)])
    pred = logits.argmax(1)
    print(f"PyTorch: test accuracy {100 * (pred == y).float().mean():.2f} %, test loss {F.cross_entropy(logits, y).item():.4f}")
    if len(sys.argv) > 3:
        with open(sys.argv[3]) as f:
            go = torch.tensor([int(line) for line in f])
        print(f"images where PyTorch's class differs from Go's: {(go != pred).sum().item()} of {n}")


if __name__ == "__main__":
    main()
