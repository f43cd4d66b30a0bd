#!/usr/bin/env bash
# One call on a GPU machine: build the kernels, vet and test the module with
# -tags cuda, benchmark, and print a short table last. Run from the repository
# root after scripts/device-pack.sh, carrying .device (the device tool's run:
# `bash scripts/gpu-check.sh`). Writes $OUT/gpu-check.log and $OUT/kernels.ptx.
set -u
out=${OUT:-/tmp}
exec > >(tee "$out/gpu-check.log") 2>&1
source .device/env.sh
export VAT_MNIST_DIR=$PWD/.device/mnist GOFLAGS="-mod=vendor -tags=cuda"
nvidia-smi -L
status() { printf '%-28s %s\n' "$1" "$2" >> /tmp/summary; }
: > /tmp/summary

echo "=== nvcc: cuda/kernels.cu -> cuda/kernels.ptx"
if (cd cuda && nvcc -ptx -arch=compute_80 -o kernels.ptx kernels.cu); then
  cp cuda/kernels.ptx "$out/kernels.ptx"; status "nvcc kernels.ptx" ok
else
  status "nvcc kernels.ptx" FAILED
fi

echo "=== go vet -tags cuda ./..."
if go vet ./... 2>&1 | tail -30; [ "${PIPESTATUS[0]}" = 0 ]; then status "go vet -tags cuda" ok; else status "go vet -tags cuda" FAILED; fi

echo "=== go test -tags cuda ./..."
set -o pipefail
if timeout 400 go test -count=1 -v ./... 2>&1 | tee /tmp/test.log | grep -E '^(=== RUN|--- |ok|FAIL|PASS|panic)|_test.go' | grep -v '^=== RUN' | tail -80; then
  status "go test -tags cuda ./..." ok
else
  status "go test -tags cuda ./..." FAILED
fi
set +o pipefail
cp /tmp/test.log "$out/test.log"

echo "=== benchmarks"
timeout 120 go test -count=1 -run '^$' -bench . -benchtime 20x ./cuda 2>&1 | grep -E 'Benchmark|ok|FAIL' | tee /tmp/bench.log
status "conv2 forward (cuda)" "$(grep -o '[0-9.]* TFLOP/s' /tmp/bench.log | head -1)"

echo; echo "=== summary"; cat /tmp/summary
