package ops

import (
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/gradcheck"
)

// Padding against its definition, and both new layer ops' gradients
// against central differences.
func TestPadAndReLU(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	x := gradcheck.RandTensor(rng, -1, 1, 2, 3, 4, 5)
	y, err := NewPad(1, 2).Do(x)
	if err != nil {
		t.Fatal(err)
	}
	if !y.Shape().Eq(tensor.Shape{2, 3, 7, 8}) {
		t.Fatalf("padded shape %v", y.Shape())
	}
	xd, yd := x.Data().([]float32), y.Data().([]float32)
	for pl := 0; pl < 6; pl++ {
		for i := 0; i < 7; i++ {
			for j := 0; j < 8; j++ {
				want := float32(0)
				if i >= 1 && i < 5 && j >= 1 && j < 6 {
					want = xd[(pl*4+i-1)*5+j-1]
				}
				if got := yd[(pl*7+i)*8+j]; got != want {
					t.Fatalf("padded[%d,%d,%d] = %v, want %v", pl, i, j, got, want)
				}
			}
		}
	}
	gradcheck.Check(t, 33, gradcheck.Case{
		Name:   "Pad",
		Inputs: []*tensor.Dense{gradcheck.RandTensor(rng, -1, 1, 2, 2, 3, 4)},
		Wrt:    []int{0},
		Build:  func(in []*G.Node) (*G.Node, error) { return G.ApplyOp(NewPad(2, 1), in[0]) },
	})
	// ReLU: inputs kept away from the kink at 0.
	r := gradcheck.RandTensor(rng, 0.1, 1, 3, 7)
	for i, v := range r.Data().([]float32) {
		if i%2 == 0 {
			r.Data().([]float32)[i] = -v
		}
	}
	gradcheck.Check(t, 34, gradcheck.Case{
		Name:   "ReLU",
		Inputs: []*tensor.Dense{r},
		Wrt:    []int{0},
		Build:  func(in []*G.Node) (*G.Node, error) { return G.ApplyOp(NewReLU(), in[0]) },
	})
}
