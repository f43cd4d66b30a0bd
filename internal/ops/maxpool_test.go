package ops

import (
	"fmt"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/gradcheck"
)

func TestMaxPoolMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 3))
	for _, xs := range []tensor.Shape{{1, 1, 2, 2}, {2, 3, 6, 4}, {2, 2, 5, 7}, {3, 32, 24, 24}} {
		x := gradcheck.RandTensor(rng, -1, 1, xs...)
		got, err := NewMaxPool().Do(x)
		if err != nil {
			t.Fatal(err)
		}
		xd := x.Data().([]float32)
		oh, ow := xs[2]/2, xs[3]/2
		if !got.Shape().Eq(tensor.Shape{xs[0], xs[1], oh, ow}) {
			t.Fatalf("%v: shape %v", xs, got.Shape())
		}
		y := got.Data().([]float32)
		for p := 0; p < xs[0]*xs[1]; p++ {
			for i := 0; i < oh; i++ {
				for j := 0; j < ow; j++ {
					m := float32(-2)
					for _, d := range [][2]int{{0, 0}, {0, 1}, {1, 0}, {1, 1}} {
						if v := xd[(p*xs[2]+2*i+d[0])*xs[3]+2*j+d[1]]; v > m {
							m = v
						}
					}
					if y[(p*oh+i)*ow+j] != m {
						t.Fatalf("%v: y[%d,%d,%d] = %v, want %v", xs, p, i, j, y[(p*oh+i)*ow+j], m)
					}
				}
			}
		}
	}
}

func TestMaxPoolGradient(t *testing.T) {
	// Distinct, well separated values (a shuffled grid with spacing 0.05)
	// keep every window's maximum unique under a step of h = 1e-2.
	for _, xs := range []tensor.Shape{{2, 2, 4, 4}, {1, 3, 5, 6}} {
		rng := rand.New(rand.NewPCG(uint64(xs[3]), 9))
		x := tensor.New(tensor.WithShape(xs...), tensor.Of(tensor.Float32))
		d := x.Data().([]float32)
		for i, j := range rng.Perm(len(d)) {
			d[i] = float32(j)*0.05 - 1
		}
		gradcheck.Check(t, 2, gradcheck.Case{
			Name:   fmt.Sprintf("MaxPool %v", xs),
			Inputs: []*tensor.Dense{x},
			Wrt:    []int{0},
			Build:  func(in []*G.Node) (*G.Node, error) { return G.ApplyOp(NewMaxPool(), in[0]) },
		})
	}
}
