package vat

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestL2NormalizeNorms(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	for _, tc := range []struct {
		scale float64
		lo    float64
	}{{1, -1}, {10, -1}, {2.5, -1e-9}} { // the last: gradient-sized inputs
		x := randTensor(rng, tc.lo, -tc.lo, 4, 1, 5, 5)
		y, err := newL2NormalizeOp(tc.scale, 4).Do(x)
		if err != nil {
			t.Fatal(err)
		}
		yd := y.Data().([]float32)
		for i := 0; i < 4; i++ {
			n := sampleNorm(yd[i*25 : (i+1)*25])
			if math.Abs(n-tc.scale) > 1e-5*tc.scale {
				t.Errorf("scale %v: sample %d has norm %v", tc.scale, i, n)
			}
		}
	}
}

func TestL2NormalizeGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	checkGradients(t, 8, gradCase{
		name:   "L2Normalize",
		inputs: []*tensor.Dense{randTensor(rng, -1, 1, 3, 2, 2, 2)},
		wrt:    []int{0},
		build:  func(in []*G.Node) (*G.Node, error) { return L2Normalize(in[0], 3) },
	})
}
