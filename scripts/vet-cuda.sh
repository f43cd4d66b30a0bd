#!/usr/bin/env bash
# Type-checks the `cuda` build of package cuda (Go code and the C helpers of
# its cgo preambles) on a machine without the CUDA toolkit, against the stub
# headers in scripts/cudastub. Nothing is linked. The root package's cuda
# build also compiles Gorgonia's own CUDA code, which needs the real
# toolkit: that part is checked on a GPU machine (scripts/gpu-check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# Only packages that do not import Gorgonia: its own cuda build needs the
# real toolkit.
CGO_ENABLED=1 CGO_CFLAGS="-I$PWD/scripts/cudastub" go vet -tags cuda ./cuda/ ./internal/device/ ./internal/backend/ ./internal/kernels/ ./internal/rng/
echo "vet -tags cuda (cuda, internal/device, backend, kernels, rng): ok"
