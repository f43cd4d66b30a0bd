package kernels

// The AVX2 loops of optim.go (optim_amd64.s), over blocks of eight floats.

//go:noescape
func adamAVX2(w, grad, m, v *float32, blocks int, beta1, ob1, beta2, ob2, step, eps float32)

//go:noescape
func adadeltaAVX2(w, grad, a, u *float32, blocks int, rho, orho, eps, lr float32)
