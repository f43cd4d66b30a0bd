package vat

import (
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestAddGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 12))
	checkGradients(t, 13, gradCase{
		name:   "Add",
		inputs: []*tensor.Dense{randTensor(rng, -1, 1, 2, 3, 4), randTensor(rng, -1, 1, 2, 3, 4)},
		wrt:    []int{0, 1},
		build:  func(in []*G.Node) (*G.Node, error) { return G.ApplyOp(newAddOp(), in[0], in[1]) },
	})
}

// Σ w_i·x_i over two scalar losses of the same logits.
func TestWeightedSumGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 14))
	checkGradients(t, 15, gradCase{
		name:   "WeightedSum",
		inputs: []*tensor.Dense{randTensor(rng, -2, 2, 3, 4), randTensor(rng, -2, 2, 3, 4), randTensor(rng, -2, 2, 3, 4)},
		wrt:    []int{0, 1, 2},
		build: func(in []*G.Node) (*G.Node, error) {
			a, err := KLDivergence(in[0], in[1], Mean)
			if err != nil {
				return nil, err
			}
			b, err := Entropy(in[2])
			if err != nil {
				return nil, err
			}
			return G.ApplyOp(newWeightedSumOp(0.7, -2.5), a, b)
		},
	})
}
