#!/usr/bin/env bash
# One-call probe of a GPU machine for the cuda build (issue: CUDA): does
# Gorgonia's `cuda` build compile against the machine's CUDA and cuDNN, and do
# the package's tests pass under the tag? Run from the repository root after
# scripts/device-pack.sh, with .device carried. Writes $OUT/probe.log.
set -u
log=${OUT:-/tmp}/probe.log
exec > >(tee "$log") 2>&1
step() { echo; echo "=== $*"; }
source .device/env.sh
export VAT_MNIST_DIR=$PWD/.device/mnist
step machine
nvidia-smi -L; nvidia-smi --query-gpu=driver_version,memory.total --format=csv,noheader
command -v nvcc && nvcc --version | tail -2
echo "CGO_CFLAGS=$CGO_CFLAGS"; echo "CGO_LDFLAGS=$CGO_LDFLAGS"
for h in cuda.h cudnn.h cublas_v2.h cudnn_version.h; do
  echo "$h: $(for d in $CGO_CFLAGS; do f=${d#-I}/$h; [ -e "$f" ] && echo "$f"; done | head -1)"
done
grep -h "define CUDNN_MAJOR\|define CUDNN_MINOR" $(for d in $CGO_CFLAGS; do ls ${d#-I}/cudnn_version.h 2>/dev/null; done) 2>/dev/null | head -2
step "go build -tags cuda: bindings, then gorgonia"
export GOFLAGS="-mod=vendor -tags=cuda"
for p in gorgonia.org/cu gorgonia.org/cu/blas gorgonia.org/cu/dnn gorgonia.org/gorgonia; do
  echo "--- $p"; timeout 240 go build "$p" 2>&1 | head -40 && echo "(exit ${PIPESTATUS[0]})"
done
step "go vet and tests of this module under -tags cuda"
timeout 120 go vet ./... 2>&1 | head -30
timeout 300 go test -short -count=1 ./... 2>&1 | tail -30
step "nvcc smoke test"
mkdir -p /tmp/k && cat > /tmp/k/k.cu <<'CU'
extern "C" __global__ void axpy(float a, const float* x, float* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) y[i] += a * x[i];
}
CU
nvcc -ptx -arch=sm_90 -o /tmp/k/k.ptx /tmp/k/k.cu && head -20 /tmp/k/k.ptx | grep -E "version|target"
echo; echo "probe done"
