//go:build cuda

package ops

// In a cuda build the GPU-path tests also run on the real GPU: importing
// package cuda registers it.
import _ "github.com/org/vat/cuda"
