#!/usr/bin/env bash
# One call on a GPU machine: build the kernels, vet and test the module with
# -tags cuda, time each convolution and pooling direction on our kernels and
# on cuDNN, time training steps (own kernels, cuDNN, auto) with auto mode's
# per-layer choices and a per-op profile, time a semi-supervised step, time
# the four MNIST runs for one epoch each in auto mode and with
# VAT_CUDNN=off (the baseline, same sitting), and a short semi-supervised
# run. A short table comes last; it says whether the tests used the GPU.
# Run from the repository root after scripts/device-pack.sh, carrying
# .device (the device tool's run: `bash scripts/gpu-check.sh`). Writes
# seven files, within the device tool's eight: $OUT/gpu-check.log,
# test.log, bench.log, kernels.ptx, epoch1-auto.json, epoch1-off.json (the
# examples' results.json) and semisup.json. Its timeouts (230 + 90 + 2 x 60
# + 60 s, besides building) fit one 10-minute call at EPOCHS=1.
# EPOCHS=n times n epochs instead of one (EPOCHS_OFF=m: m for the
# VAT_CUDNN=off baseline); SKIP_TESTS=1 only times.
set -u
out=${OUT:-/tmp}
epochs=${EPOCHS:-1}
exec > >(tee "$out/gpu-check.log") 2>&1
source .device/env.sh
export VAT_MNIST_DIR=$PWD/.device/mnist GOFLAGS="-mod=vendor -tags=cuda"
nvidia-smi -L
status() { printf '%-40s %s\n' "$1" "$2" >> /tmp/summary; }
: > /tmp/summary

# The kernels compile at run time (NVRTC, cuda/nvrtc.go); nvcc here only
# shows that the source compiles for the oldest target and returns the PTX
# for inspection. Nothing is written into the checkout.
echo "=== nvcc: cuda/kernels.cu -> \$OUT/kernels.ptx (compute_61, for inspection)"
if nvcc -ptx -arch=compute_61 -o "$out/kernels.ptx" cuda/kernels.cu; then
  status "nvcc kernels.cu (compute_61)" ok
else
  status "nvcc kernels.cu (compute_61)" FAILED
fi

echo "=== go vet -tags cuda ./..."
if go vet ./... 2>&1 | tail -30; [ "${PIPESTATUS[0]}" = 0 ]; then status "go vet -tags cuda" ok; else status "go vet -tags cuda" FAILED; fi

if [ "${SKIP_TESTS:-0}" != 1 ]; then
  echo "=== go test -tags cuda ./..."
  set -o pipefail
  if timeout 230 go test -count=1 -v ./... 2>&1 | tee /tmp/test.log | grep -E '^(--- |ok|FAIL|PASS|panic)|_test.go|GPU|cuDNN|algorithms|choice|  (conv|max-pool)' | grep -v '^=== RUN' | tail -80; then
    status "go test -tags cuda ./..." ok
  else
    status "go test -tags cuda ./..." FAILED
  fi
  set +o pipefail
  cp /tmp/test.log "$out/test.log"
  # Tests skip, and pass, without a usable GPU (say, a PTX without a new
  # kernel makes Open fail): that must not read as a GPU run.
  if grep -qE 'no usable GPU|only the host reference device|needs a GPU' /tmp/test.log; then
    status "GPU used by the tests" "NO: $(grep -m1 -oE '(no usable GPU|only the host reference device|needs a GPU)[^)]*' /tmp/test.log)"
  else
    status "GPU used by the tests" yes
  fi
  grep -E '^(ok|FAIL|---)' /tmp/test.log | grep -E 'ok|FAIL' | sed 's/^/  /' >> /tmp/summary
fi

echo "=== per-layer paths (µs per call, batch 128) and training steps (ms/step; null = the host's share)"
timeout 90 go test -count=1 -run '^$' -bench 'GPUConvPaths|GPUTrainStep|GPUSemiStep' -benchtime 10x -v . ./internal/ops/ 2>&1 | tee /tmp/bench.log | grep -vE '^(goos|goarch|pkg|cpu):|^=== RUN'
cp /tmp/bench.log "$out/bench.log"
awk '/^Benchmark/ {for (i = 3; i < NF; i++) if ($(i+1) ~ /\/(op|step)$/) printf "  %-52s %s %s\n", $1, $i, $(i+1)}' /tmp/bench.log >> /tmp/summary

go build -o /tmp/mnist ./examples/mnist
for mode in auto off; do
  n=$epochs; [ "$mode" = off ] && n=${EPOCHS_OFF:-$epochs}
  echo "=== VAT_CUDNN=$mode go run -tags cuda ./examples/mnist -epochs $n (all four runs, 60,000 images)"
  # Results under /tmp, results.json back as one file: the device tool
  # returns at most 8 files.
  if VAT_CUDNN=$mode timeout $((40 + 20 * n)) /tmp/mnist -epochs "$n" -progress=false -out "/tmp/epoch$n-$mode"; then
    cp "/tmp/epoch$n-$mode/results.json" "$out/epoch$n-$mode.json"
    status "examples/mnist -epochs $n ($mode)" ok
  else
    status "examples/mnist -epochs $n ($mode)" FAILED
  fi
done

# The semi-supervised example on the GPU (MLP with batch norm, Adam, the
# losses and VAT's noise all on the device): a short timing, not a result.
# SEMISUP_ITERS=n sets its length.
si=${SEMISUP_ITERS:-300}
go build -o /tmp/semisup ./examples/semisup
echo "=== go run -tags cuda ./examples/semisup -runs supervised,vat -iterations $si (timing only)"
if timeout 60 /tmp/semisup -runs supervised,vat -iterations "$si" -eval-every "$si" -test-limit 2000 -progress=false -out /tmp/semisup; then
  cp /tmp/semisup/results.json "$out/semisup.json"
  status "examples/semisup -iterations $si" ok
  # training seconds of each run (supervised, vat), from results.json
  grep -o '"seconds": *[0-9.]*' /tmp/semisup/results.json | sed "s/^/  semisup $si steps: /" >> /tmp/summary
else
  status "examples/semisup -iterations $si" FAILED
fi

echo; echo "=== summary"; cat /tmp/summary
