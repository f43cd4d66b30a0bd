package kernels

import "math"

// This file holds the optimizers' elementwise updates (the root package's
// Adam and Adadelta). On amd64 with AVX2 the whole vectors of eight run in
// assembly with the same float32 (and, for Adadelta's ratio, float64)
// operations in the same order as the loops here, separate multiplies and
// adds, so both give the same bits; the tail runs here. The explicit
// conversions around products keep the compiler from fusing them into
// multiply-adds (which it may do for GOAMD64=v3 and on other
// architectures): every path rounds each product.

// AdamUpdate applies one Adam update (Kingma & Ba, 2015) to w with the
// gradient g and the moments m and v, all of one length:
//
//	m ← β₁·m + (1−β₁)·g
//	v ← β₂·v + (1−β₂)·g·g
//	w ← w − step·m / (√v + eps)
//
// with step and eps already bias-corrected by the caller.
func AdamUpdate(w, g, m, v []float32, beta1, beta2, step, eps float32) {
	n := len(g)
	w, m, v = w[:n], m[:n], v[:n]
	ob1, ob2 := 1-beta1, 1-beta2
	j := 0
	if useAVX2 && n >= 8 {
		j = n &^ 7
		adamAVX2(&w[0], &g[0], &m[0], &v[0], j/8, beta1, ob1, beta2, ob2, step, eps)
	}
	for ; j < n; j++ {
		gj := g[j]
		m[j] = float32(beta1*m[j]) + float32(ob1*gj)
		v[j] = float32(beta2*v[j]) + float32(ob2*gj*gj)
		w[j] -= float32(step*m[j]) / (float32(math.Sqrt(float64(v[j]))) + eps)
	}
}

// AdadeltaUpdate applies one Adadelta update (Zeiler, 2012) to w with the
// gradient g and the accumulators a (of g²) and u (of the updates²), all
// of one length:
//
//	a ← ρ·a + (1−ρ)·g·g
//	d ← g · √(u+eps) / √(a+eps)   (the ratio in float64)
//	w ← w − lr·d
//	u ← ρ·u + (1−ρ)·d·d
func AdadeltaUpdate(w, g, a, u []float32, rho, eps, lr float32) {
	n := len(g)
	w, a, u = w[:n], a[:n], u[:n]
	orho := 1 - rho
	j := 0
	if useAVX2 && n >= 8 {
		j = n &^ 7
		adadeltaAVX2(&w[0], &g[0], &a[0], &u[0], j/8, rho, orho, eps, lr)
	}
	for ; j < n; j++ {
		gj := g[j]
		a[j] = float32(rho*a[j]) + float32(orho*gj*gj)
		d := gj * float32(math.Sqrt(float64(u[j]+eps))/math.Sqrt(float64(a[j]+eps)))
		w[j] -= float32(lr * d)
		u[j] = float32(rho*u[j]) + float32(orho*d*d)
	}
}
