//go:build !amd64

package kernels

// spinPause is a no-op where the polling loops have no pause instruction.
func spinPause() {}
