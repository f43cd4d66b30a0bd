// Package ref64 holds the float64 arithmetic that the tests and scripts
// use as an independent reference for the package's float32 results.
package ref64

import "math"

// Of returns x in float64.
func Of(x []float32) []float64 {
	o := make([]float64, len(x))
	for i, v := range x {
		o[i] = float64(v)
	}
	return o
}

// Softmax returns exp(z_k) / Σ exp(z), shifted by the maximum.
func Softmax(z []float64) []float64 {
	mx := math.Inf(-1)
	for _, v := range z {
		mx = math.Max(mx, v)
	}
	p := make([]float64, len(z))
	var s float64
	for i, v := range z {
		p[i] = math.Exp(v - mx)
		s += p[i]
	}
	for i := range p {
		p[i] /= s
	}
	return p
}

// Cosine returns the cosine of the angle between a and b.
func Cosine(a []float64, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += a[i] * float64(b[i])
		aa += a[i] * a[i]
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

// Normalize scales v to unit L2 norm in place.
func Normalize(v []float64) {
	var s float64
	for _, x := range v {
		s += x * x
	}
	for i := range v {
		v[i] /= math.Sqrt(s)
	}
}

// HessVec returns JᵀFJ·d, the Hessian of r ↦ KL(p ‖ softmax(z + J·r)) at
// r = 0 applied to d, with jac the Jacobian ∂z/∂x (one row of len(p) per
// input) and F = diag(p) − ppᵀ the softmax's Fisher matrix.
func HessVec(jac [][]float64, p, d []float64) []float64 {
	a := make([]float64, len(p))
	for j, v := range d {
		for c := range a {
			a[c] += jac[j][c] * v
		}
	}
	var pa float64
	for c := range a {
		pa += p[c] * a[c]
	}
	for c := range a {
		a[c] = p[c] * (a[c] - pa)
	}
	out := make([]float64, len(d))
	for j := range out {
		for c := range a {
			out[j] += jac[j][c] * a[c]
		}
	}
	return out
}
