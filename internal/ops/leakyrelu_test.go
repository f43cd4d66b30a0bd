package ops

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/gradcheck"
)

// awayFromKink moves values within 0.05 of 0 out to ±0.05, so that the
// finite differences do not straddle the kink.
func awayFromKink(x *tensor.Dense) *tensor.Dense {
	for i, d := 0, x.Data().([]float32); i < len(d); i++ {
		if d[i] > -0.05 && d[i] < 0.05 {
			d[i] = float32(math.Copysign(0.05, float64(d[i])))
		}
	}
	return x
}

func TestLeakyReLUGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(uint64(rand.Int64()), 31))
	for _, alpha := range []float64{0.01, 0.2, 0.9} {
		gradcheck.Check(t, rng.Uint64(), gradcheck.Case{
			Name:   "LeakyReLU",
			Inputs: []*tensor.Dense{awayFromKink(gradcheck.RandTensor(rng, -1, 1, 3, 7))},
			Wrt:    []int{0},
			Build: func(in []*G.Node) (*G.Node, error) {
				op, err := NewLeakyReLU(alpha)
				if err != nil {
					return nil, err
				}
				return G.ApplyOp(op, in[0])
			},
		})
		// The tangent (LeakyScale) is differentiable in t.
		gradcheck.Check(t, rng.Uint64(), gradcheck.Case{
			Name:   "LeakyScale",
			Inputs: []*tensor.Dense{gradcheck.RandTensor(rng, -1, 1, 4, 5), gradcheck.RandTensor(rng, -1, 1, 4, 5)},
			Wrt:    []int{0},
			Build: func(in []*G.Node) (*G.Node, error) {
				op, err := NewLeakyScale(alpha)
				if err != nil {
					return nil, err
				}
				return G.ApplyOp(op, in[0], in[1])
			},
		})
	}
}

// TestLeakyReLUMatchesDefinition checks the values against max(x, αx)
// computed in float64, and refuses slopes outside (0, 1).
func TestLeakyReLUMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(uint64(rand.Int64()), 32))
	x := gradcheck.RandTensor(rng, -3, 3, 257)
	x.Data().([]float32)[0] = 0
	op, err := NewLeakyReLU(0.3)
	if err != nil {
		t.Fatal(err)
	}
	out, err := op.Do(x)
	if err != nil {
		t.Fatal(err)
	}
	y := out.Data().([]float32)
	for i, v := range x.Data().([]float32) {
		want := float64(v)
		if want < 0 {
			want *= float64(float32(0.3))
		}
		if float64(y[i]) != float64(float32(want)) {
			t.Fatalf("LeakyReLU(%v) = %v, want %v", v, y[i], want)
		}
	}
	for _, a := range []float64{0, 1, -0.1, 2} {
		if _, err := NewLeakyReLU(a); err == nil {
			t.Errorf("NewLeakyReLU(%v) accepted", a)
		}
	}
}
