package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestOptimizerUpdates checks Adam's and Adadelta's updates on every path
// this machine has against the update formulas evaluated here one element
// at a time (float32 arithmetic, each product rounded, Adadelta's ratio in
// float64), bit for bit, at lengths around the vector width.
func TestOptimizerUpdates(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 16, 31, 100} {
		vecPaths(t, func(t *testing.T) {
			t.Run(fmt.Sprint(n), func(t *testing.T) {
				r := rand.New(rand.NewPCG(uint64(n), 7))
				fresh := func(scale float64, positive bool) []float32 {
					s := make([]float32, n)
					for i := range s {
						s[i] = float32(r.NormFloat64() * scale)
						if positive {
							s[i] = float32(math.Abs(float64(s[i])))
						}
					}
					return s
				}
				w, g, m, v := fresh(1, false), fresh(0.1, false), fresh(0.01, false), fresh(1e-3, true)
				const beta1, beta2, step, eps = float32(0.9), float32(0.999), float32(1.7e-3), float32(1e-8)
				wm, wv, ww := make([]float32, n), make([]float32, n), make([]float32, n)
				for j := range n {
					wm[j] = float32(beta1*m[j]) + float32(float32(1-beta1)*g[j])
					wv[j] = float32(beta2*v[j]) + float32(float32(float32(1-beta2)*g[j])*g[j])
					ww[j] = w[j] - float32(step*wm[j])/(float32(math.Sqrt(float64(wv[j])))+eps)
				}
				AdamUpdate(w, g, m, v, beta1, beta2, step, eps)
				for _, c := range []struct {
					name      string
					got, want []float32
				}{{"Adam m", m, wm}, {"Adam v", v, wv}, {"Adam w", w, ww}} {
					if i := sameBits(c.got, c.want); i >= 0 {
						t.Fatalf("%s[%d] = %v, want %v", c.name, i, c.got[i], c.want[i])
					}
				}

				w, g, a, u := fresh(1, false), fresh(0.1, false), fresh(1e-2, true), fresh(1e-4, true)
				const rho, deps, lr = float32(0.95), float32(1e-7), float32(1)
				wa, wu, ww2 := make([]float32, n), make([]float32, n), make([]float32, n)
				for j := range n {
					wa[j] = float32(rho*a[j]) + float32(float32(float32(1-rho)*g[j])*g[j])
					d := g[j] * float32(math.Sqrt(float64(u[j]+deps))/math.Sqrt(float64(wa[j]+deps)))
					ww2[j] = w[j] - float32(lr*d)
					wu[j] = float32(rho*u[j]) + float32(float32(float32(1-rho)*d)*d)
				}
				AdadeltaUpdate(w, g, a, u, rho, deps, lr)
				for _, c := range []struct {
					name      string
					got, want []float32
				}{{"Adadelta a", a, wa}, {"Adadelta u", u, wu}, {"Adadelta w", w, ww2}} {
					if i := sameBits(c.got, c.want); i >= 0 {
						t.Fatalf("%s[%d] = %v, want %v", c.name, i, c.got[i], c.want[i])
					}
				}
			})
		})
	}
}
