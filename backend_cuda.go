//go:build cuda

package vat

import (
	"github.com/org/vat/cuda"
	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/device"
)

// The CUDA backend, compiled in with -tags cuda (see internal/backend).
func init() {
	backend.Register(func() (device.GPU, error) {
		b, err := cuda.OpenBackend()
		if err != nil {
			return nil, err
		}
		return b, nil
	})
}
