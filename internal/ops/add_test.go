package ops

import (
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/gradcheck"
)

func TestAddGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 12))
	gradcheck.Check(t, 13, gradcheck.Case{
		Name:   "Add",
		Inputs: []*tensor.Dense{gradcheck.RandTensor(rng, -1, 1, 2, 3, 4), gradcheck.RandTensor(rng, -1, 1, 2, 3, 4)},
		Wrt:    []int{0, 1},
		Build:  func(in []*G.Node) (*G.Node, error) { return G.ApplyOp(NewAdd(), in[0], in[1]) },
	})
}

// Σ w_i·x_i over two scalar losses of the same logits.
func TestWeightedSumGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 14))
	gradcheck.Check(t, 15, gradcheck.Case{
		Name:   "WeightedSum",
		Inputs: []*tensor.Dense{gradcheck.RandTensor(rng, -2, 2, 3, 4), gradcheck.RandTensor(rng, -2, 2, 3, 4), gradcheck.RandTensor(rng, -2, 2, 3, 4)},
		Wrt:    []int{0, 1, 2},
		Build: func(in []*G.Node) (*G.Node, error) {
			a, err := G.ApplyOp(NewKL(Mean), in[0], in[1])
			if err != nil {
				return nil, err
			}
			b, err := G.ApplyOp(NewEntropy(), in[2])
			if err != nil {
				return nil, err
			}
			return G.ApplyOp(NewWeightedSum(0.7, -2.5), a, b)
		},
	})
}
