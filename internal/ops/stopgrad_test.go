package ops

import (
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/org/vat/internal/gradcheck"
)

// cost = Σ x⊙R₁ + Σ StopGradient(x)⊙R₂: the value counts both terms, the
// gradient only the first (R₁, not R₁ + R₂).
func TestStopGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	g := G.NewGraph()
	xv, r1, r2 := gradcheck.RandTensor(rng, -1, 1, 3, 4), gradcheck.RandTensor(rng, -1, 1, 3, 4), gradcheck.RandTensor(rng, -1, 1, 3, 4)
	x := G.NewMatrix(g, G.Float32, G.WithShape(3, 4), G.WithValue(xv), G.WithName("x"))
	sg, err := G.ApplyOp(NewStopGradient(), x)
	if err != nil {
		t.Fatal(err)
	}
	a, err1 := gradcheck.Project(x, r1)
	b, err2 := gradcheck.Project(sg, r2)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	cost, err := G.ApplyOp(NewWeightedSum(1, 1), a, b)
	if err != nil {
		t.Fatal(err)
	}
	grads, err := G.Grad(cost, x)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	cv, gv := cost.Value(), grads[0].Value()
	var want float64
	for i, v := range xv.Data().([]float32) {
		want += float64(v) * float64(r1.Data().([]float32)[i]+r2.Data().([]float32)[i])
		if got, w := gv.Data().([]float32)[i], r1.Data().([]float32)[i]; got != w {
			t.Fatalf("grad[%d] = %v, want %v", i, got, w)
		}
	}
	if got, _ := Scalar32("cost", 0, cv); float64(got)-want > 1e-5 || want-float64(got) > 1e-5 {
		t.Fatalf("value %v, want %v", got, want)
	}
}
