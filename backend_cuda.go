//go:build cuda

package vat

import "github.com/org/vat/cuda"

// The CUDA backend, compiled in with -tags cuda (see backend.go).
func init() {
	backendOpener = func() (gpuDevice, error) {
		b, err := cuda.OpenBackend()
		if err != nil {
			return nil, err
		}
		return b, nil
	}
}
