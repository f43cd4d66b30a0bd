#!/usr/bin/env bash
# One call on a GPU machine: build the kernels, vet and test the module with
# -tags cuda, time the four MNIST runs for one epoch each on the GPU, and
# print a short table last. Run from the repository root after
# scripts/device-pack.sh, carrying .device (the device tool's run:
# `bash scripts/gpu-check.sh`). Writes $OUT/gpu-check.log, $OUT/test.log,
# $OUT/kernels.ptx and $OUT/epoch1/results.json.
# EPOCHS=n times n epochs instead of one; SKIP_TESTS=1 only times.
set -u
out=${OUT:-/tmp}
epochs=${EPOCHS:-1}
exec > >(tee "$out/gpu-check.log") 2>&1
source .device/env.sh
export VAT_MNIST_DIR=$PWD/.device/mnist GOFLAGS="-mod=vendor -tags=cuda"
nvidia-smi -L
status() { printf '%-34s %s\n' "$1" "$2" >> /tmp/summary; }
: > /tmp/summary

echo "=== nvcc: cuda/kernels.cu -> cuda/kernels.ptx"
if (cd cuda && nvcc -ptx -arch=compute_80 -o kernels.ptx kernels.cu); then
  cp cuda/kernels.ptx "$out/kernels.ptx"; status "nvcc kernels.ptx" ok
else
  status "nvcc kernels.ptx" FAILED
fi

echo "=== go vet -tags cuda ./..."
if go vet ./... 2>&1 | tail -30; [ "${PIPESTATUS[0]}" = 0 ]; then status "go vet -tags cuda" ok; else status "go vet -tags cuda" FAILED; fi

if [ "${SKIP_TESTS:-0}" != 1 ]; then
  echo "=== go test -tags cuda ./..."
  set -o pipefail
  if timeout 420 go test -count=1 -v ./... 2>&1 | tee /tmp/test.log | grep -E '^(--- |ok|FAIL|PASS|panic)|_test.go|GPU' | grep -v '^=== RUN' | tail -60; then
    status "go test -tags cuda ./..." ok
  else
    status "go test -tags cuda ./..." FAILED
  fi
  set +o pipefail
  cp /tmp/test.log "$out/test.log"
  grep -E '^(ok|FAIL|---)' /tmp/test.log | grep -E 'ok|FAIL' | sed 's/^/  /' >> /tmp/summary
fi

echo "=== GPU step benchmark (ms/step; null = the host's share)"
timeout 150 go test -count=1 -run '^$' -bench 'GPUTrainStep' -benchtime 10x . 2>&1 | grep -E 'Benchmark|ok|FAIL' | tee /tmp/bench.log
awk '/Benchmark/ {printf "  %-40s %s ms/step\n", $1, $5}' /tmp/bench.log >> /tmp/summary

echo "=== go run -tags cuda ./examples/mnist -epochs $epochs (all four runs, 60,000 images)"
go build -o /tmp/mnist ./examples/mnist
if timeout 300 /tmp/mnist -epochs "$epochs" -progress=false -out "$out/epoch$epochs"; then
  status "examples/mnist -epochs $epochs" ok
else
  status "examples/mnist -epochs $epochs" FAILED
fi

echo; echo "=== summary"; cat /tmp/summary
