//go:build !amd64

package kernels

// Never called: useAVX2 is false off amd64.

func adamAVX2(w, grad, m, v *float32, blocks int, beta1, ob1, beta2, ob2, step, eps float32) {}
func adadeltaAVX2(w, grad, a, u *float32, blocks int, rho, orho, eps, lr float32)            {}
