#!/usr/bin/env bash
# Prepares .device/ for a GPU machine (no Go, no network): the shared pack
# (Go toolchain and vendored modules) plus the MNIST files, which a vendor
# folder does not hold. Run from the repository root.
set -euo pipefail
bash ../shared/device/pack.sh
mkdir -p .device/mnist
cp "$(go run ./scripts/mnistdir)"/*.gz .device/mnist/
du -sh .device/mnist
