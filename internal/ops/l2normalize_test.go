package ops

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/gradcheck"
)

func TestL2NormalizeNorms(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	for _, tc := range []struct {
		scale float64
		lo    float64
	}{{1, -1}, {10, -1}, {2.5, -1e-9}} { // the last: gradient-sized inputs
		x := gradcheck.RandTensor(rng, tc.lo, -tc.lo, 4, 1, 5, 5)
		y, err := NewL2Normalize(tc.scale, 4).Do(x)
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
	gradcheck.Check(t, 8, gradcheck.Case{
		Name:   "L2Normalize",
		Inputs: []*tensor.Dense{gradcheck.RandTensor(rng, -1, 1, 3, 2, 2, 2)},
		Wrt:    []int{0},
		Build:  func(in []*G.Node) (*G.Node, error) { return G.ApplyOp(NewL2Normalize(3, in[0].Dims()), in[0]) },
	})
}
