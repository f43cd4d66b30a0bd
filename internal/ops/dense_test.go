package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/gradcheck"
)

func TestDenseMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	for _, tc := range []struct {
		xs   tensor.Shape
		m    int
		relu bool
	}{{tensor.Shape{3, 5}, 4, false}, {tensor.Shape{2, 3, 2, 2}, 7, true}, {tensor.Shape{5, 4608}, 128, true}} {
		k := tc.xs.TotalSize() / tc.xs[0]
		x, w, b := gradcheck.RandTensor(rng, -1, 1, tc.xs...), gradcheck.RandTensor(rng, -1, 1, k, tc.m), gradcheck.RandTensor(rng, -1, 1, tc.m)
		got, err := NewDense(tc.relu, len(tc.xs)).Do(x, w, b)
		if err != nil {
			t.Fatal(err)
		}
		xd, wd, bd, y := x.Data().([]float32), w.Data().([]float32), b.Data().([]float32), got.Data().([]float32)
		for i := 0; i < tc.xs[0]; i++ {
			for j := 0; j < tc.m; j++ {
				acc := float64(bd[j])
				for l := 0; l < k; l++ {
					acc += float64(xd[i*k+l]) * float64(wd[l*tc.m+j])
				}
				if tc.relu && acc < 0 {
					acc = 0
				}
				// float32 sums of up to 4608 products of magnitude <= 1.
				if math.Abs(acc-float64(y[i*tc.m+j])) > 1e-3 {
					t.Fatalf("%v: y[%d,%d] = %v, want %v", tc.xs, i, j, y[i*tc.m+j], acc)
				}
			}
		}
	}
}

func TestDenseGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, tc := range []struct {
		xs   tensor.Shape
		m    int
		relu bool
	}{{tensor.Shape{3, 5}, 4, false}, {tensor.Shape{2, 2, 2, 2}, 3, true}} {
		k := tc.xs.TotalSize() / tc.xs[0]
		var x, w, b *tensor.Dense
		for { // keep pre-activations 0.05 away from the ReLU's kink
			x, w, b = gradcheck.RandTensor(rng, -1, 1, tc.xs...), gradcheck.RandTensor(rng, -1, 1, k, tc.m), gradcheck.RandTensor(rng, -0.5, 0.5, tc.m)
			z, _ := NewDense(false, len(tc.xs)).Do(x, w, b)
			if minAbs(z.Data().([]float32)) > 0.05 {
				break
			}
		}
		relu, rank := tc.relu, len(tc.xs)
		gradcheck.Check(t, 3, gradcheck.Case{
			Name:   fmt.Sprintf("Dense %v", tc.xs),
			Inputs: []*tensor.Dense{x, w, b},
			Wrt:    []int{0, 1, 2},
			Build:  func(in []*G.Node) (*G.Node, error) { return G.ApplyOp(NewDense(relu, rank), in[0], in[1], in[2]) },
		})
	}
}
