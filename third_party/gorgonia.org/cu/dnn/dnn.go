// Package cudnn is a minimal replacement, for github.com/org/vat, of
// gorgonia.org/cu/dnn v0.9.6: only the cuDNN handle that gorgonia v0.9.18
// itself uses (its cuda.go keeps one *Context per device). The original
// package wraps cuDNN 7/8 APIs that cuDNN 9 removed (cudnnAlgorithm_t and
// its descriptors, the v6/v7 RNN calls), so it does not compile against
// cuDNN 9. Gorgonia's ops/nn package, which needs the full bindings, is not
// used by this module.
package cudnn

// #cgo LDFLAGS: -lcudnn
// #include <cudnn.h>
import "C"

import "fmt"

// Memory represents an instance of CUDA memory.
type Memory interface {
	Uintptr() uintptr
	IsNativelyAccessible() bool
}

// Context holds a cudnnHandle_t. Call Close when done with it.
type Context struct {
	internal C.cudnnHandle_t
}

// NewContext creates a cuDNN handle; like the original, it panics if cuDNN
// cannot be initialized.
func NewContext() *Context {
	var h C.cudnnHandle_t
	if err := result(C.cudnnCreate(&h)); err != nil {
		panic(err)
	}
	return &Context{internal: h}
}

// Close destroys the handle.
func (ctx *Context) Close() error {
	var empty C.cudnnHandle_t
	if ctx.internal == empty {
		return nil
	}
	if err := result(C.cudnnDestroy(ctx.internal)); err != nil {
		return err
	}
	ctx.internal = empty
	return nil
}

// Status is a cuDNN status code.
type Status int

func (s Status) Error() string {
	return fmt.Sprintf("cudnn: %s (%d)", C.GoString(C.cudnnGetErrorString(C.cudnnStatus_t(s))), int(s))
}

func result(s C.cudnnStatus_t) error {
	if s == C.CUDNN_STATUS_SUCCESS {
		return nil
	}
	return Status(s)
}
