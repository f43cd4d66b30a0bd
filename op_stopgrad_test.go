package vat

import (
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
)

// y = x ⊙ x + StopGradient(x ⊙ x): the value counts both terms, the gradient
// only the first (2x, not 4x).
func TestStopGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	g := G.NewGraph()
	xv := randTensor(rng, -1, 1, 3, 4)
	x := G.NewMatrix(g, G.Float32, G.WithShape(3, 4), G.WithValue(xv), G.WithName("x"))
	sq := G.Must(G.HadamardProd(x, x))
	sg, err := StopGradient(sq)
	if err != nil {
		t.Fatal(err)
	}
	cost := G.Must(G.Sum(G.Must(G.Add(sq, sg))))
	grads, err := G.Grad(cost, x)
	if err != nil {
		t.Fatal(err)
	}
	var cv, gv G.Value
	G.Read(cost, &cv)
	G.Read(grads[0], &gv)
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	var want float32
	for i, v := range xv.Data().([]float32) {
		want += 2 * v * v
		if got := gv.Data().([]float32)[i]; got != 2*v {
			t.Fatalf("grad[%d] = %v, want %v", i, got, 2*v)
		}
	}
	if got, _ := scalar32("cost", 0, cv); got-want > 1e-5 || want-got > 1e-5 {
		t.Fatalf("value %v, want %v", got, want)
	}
}
