//go:build cuda

package cuda

import (
	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/device"
)

// Importing the package (the root package's cuda build does, in
// backend_cuda.go) registers GPU 0 as the backend, opened on first use.
func init() {
	backend.Register(func() (device.GPU, error) {
		b, err := OpenBackend()
		if err != nil {
			return nil, err
		}
		return b, nil
	})
}
