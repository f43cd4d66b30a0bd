package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// bnCase is one layout of TestBNLoops: n samples of c channels of p
// positions, and the channel block [lo, hi).
type bnCase struct{ n, c, p, lo, hi int }

var bnCases = []bnCase{
	{1, 16, 1, 0, 16}, {7, 16, 1, 0, 16}, {250, 1200, 1, 1184, 1200}, {33, 40, 1, 16, 32}, {33, 40, 1, 32, 40},
	{5, 3, 1, 0, 3}, {0, 16, 1, 0, 16}, {4, 6, 9, 0, 6}, {3, 20, 5, 16, 20}, {2, 16, 4, 0, 16},
}

// bnData returns fresh random float32 and float64 slices.
func bnData(r *rand.Rand, n int, scale float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64() * scale)
	}
	return s
}

func bnData64(r *rand.Rand, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = r.NormFloat64()
	}
	return s
}

// at returns the index of sample i, channel ch, position j.
func (tc bnCase) at(i, ch, j int) int { return (i*tc.c+ch)*tc.p + j }

// TestBNLoops checks each batch-normalization loop on every path this
// machine has against its definition computed here in float64 in the same
// order, so bit for bit: the AVX2 loops (a whole block of 16 features) must
// give exactly the portable results.
func TestBNLoops(t *testing.T) {
	for _, tc := range bnCases {
		vecPaths(t, func(t *testing.T) {
			t.Run(fmt.Sprintf("%+v", tc), func(t *testing.T) {
				r := rand.New(rand.NewPCG(uint64(tc.n), uint64(tc.c*100+tc.lo)))
				size := tc.n * tc.c * tc.p
				w := tc.hi - tc.lo
				x, g, xh := bnData(r, size, 3), bnData(r, size, 1), bnData(r, size, 1)
				for i := range x {
					x[i] += 2
				}
				mean, s0 := bnData64(r, BNBlock), bnData64(r, BNBlock)
				inv, scale, shift, tilt := bnData64(r, tc.c), bnData64(r, BNBlock), bnData64(r, BNBlock), bnData64(r, BNBlock)
				gamma, beta := bnData(r, tc.c, 1), bnData(r, tc.c, 1)
				a := float64(tc.n * tc.p)

				// Per-channel sums, each from s0 in sample-then-position order.
				sum, sq, sg, sgx := make([]float64, w), make([]float64, w), make([]float64, w), make([]float64, w)
				for k := range w {
					sum[k], sq[k], sg[k], sgx[k] = s0[k], s0[k], s0[k], s0[k]
					for i := range tc.n {
						for j := range tc.p {
							at := tc.at(i, tc.lo+k, j)
							sum[k] += float64(x[at])
							d := float64(x[at]) - mean[k]
							sq[k] += d * d
							sg[k] += float64(g[at])
							sgx[k] += float64(g[at]) * float64(xh[at])
						}
					}
				}
				got := func(f func(s []float64)) []float64 {
					s := append([]float64(nil), s0...)
					f(s)
					return s[:w]
				}
				sums := []struct {
					name      string
					got, want []float64
				}{
					{"BNSum", got(func(s []float64) { BNSum(s, x, tc.n, tc.c, tc.p, tc.lo, tc.hi) }), sum},
					{"BNSumSqDev", got(func(s []float64) { BNSumSqDev(s, mean, x, tc.n, tc.c, tc.p, tc.lo, tc.hi) }), sq},
					{"BNSumDot Σg", got(func(s []float64) { BNSumDot(s, make([]float64, BNBlock), g, xh, tc.n, tc.c, tc.p, tc.lo, tc.hi) }), sg},
					{"BNSumDot Σg·x̂", got(func(s []float64) { BNSumDot(make([]float64, BNBlock), s, g, xh, tc.n, tc.c, tc.p, tc.lo, tc.hi) }), sgx},
					{"BNSumDot Σg only", got(func(s []float64) { BNSumDot(s, nil, g, xh, tc.n, tc.c, tc.p, tc.lo, tc.hi) }), sg},
					{"BNSumDot Σg·x̂ only", got(func(s []float64) { BNSumDot(nil, s, g, xh, tc.n, tc.c, tc.p, tc.lo, tc.hi) }), sgx},
				}
				for _, c := range sums {
					for k := range w {
						if math.Float64bits(c.got[k]) != math.Float64bits(c.want[k]) {
							t.Fatalf("%s: channel %d: got %v, want %v", c.name, tc.lo+k, c.got[k], c.want[k])
						}
					}
				}

				// Elementwise maps, outside the block untouched.
				y, xhat, o, o2 := make([]float32, size), make([]float32, size), make([]float32, size), make([]float32, size)
				BNNormalize(y, xhat, x, mean, inv, gamma, beta, tc.n, tc.c, tc.p, tc.lo, tc.hi)
				BNCenter(o, g, xh, scale, a, shift, tilt, tc.n, tc.c, tc.p, tc.lo, tc.hi)
				BNCenter(o2, g, nil, scale, a, nil, nil, tc.n, tc.c, tc.p, tc.lo, tc.hi)
				for i := range tc.n {
					for ch := range tc.c {
						for j := range tc.p {
							at := tc.at(i, ch, j)
							var wy, wxh, wo, wo2 float32
							if k := ch - tc.lo; k >= 0 && ch < tc.hi {
								h := (float64(x[at]) - mean[k]) * inv[ch]
								wxh, wy = float32(h), float32(float64(gamma[ch])*h+float64(beta[ch]))
								wo = float32(scale[k] * (a*float64(g[at]) - shift[k] - float64(xh[at])*tilt[k]))
								wo2 = float32(scale[k] * (a * float64(g[at])))
							}
							for _, c := range []struct {
								name      string
								got, want float32
							}{{"BNNormalize y", y[at], wy}, {"BNNormalize x̂", xhat[at], wxh}, {"BNCenter", o[at], wo}, {"BNCenter without x̂", o2[at], wo2}} {
								if math.Float32bits(c.got) != math.Float32bits(c.want) {
									t.Fatalf("%s: sample %d channel %d position %d: got %v, want %v", c.name, i, ch, j, c.got, c.want)
								}
							}
						}
					}
				}
			})
		})
	}
}
