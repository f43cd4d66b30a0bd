//go:build cuda

package cuda

import (
	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/device"
)

// Importing the package (the root package's cuda build does, in
// backend_cuda.go) registers the GPU as the backend, opened on first use:
// GPU 0, or the one VAT_DEVICE=gpu:N names.
func init() {
	backend.Register(func(index int) (device.GPU, error) {
		b, err := OpenBackend(index)
		if err != nil {
			return nil, err
		}
		return b, nil
	})
}
