//go:build cuda

package vat

// The CUDA backend, compiled in with -tags cuda: importing package cuda
// registers it (see internal/backend).
import _ "github.com/org/vat/cuda"
