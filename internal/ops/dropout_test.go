package ops

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/gradcheck"
)

func TestDropoutScalingAndRate(t *testing.T) {
	for _, p := range []float64{0, 0.25, 0.5} {
		op, err := NewDropout(p, 42)
		if err != nil {
			t.Fatal(err)
		}
		const n = 200000
		x := tensor.New(tensor.WithShape(n), tensor.WithBacking(ones(n)))
		y, err := op.Do(x)
		if err != nil {
			t.Fatal(err)
		}
		kept, sum := 0, 0.0
		for _, v := range y.Data().([]float32) {
			sum += float64(v)
			switch {
			case v == 0:
			case math.Abs(float64(v)-1/(1-p)) < 1e-6:
				kept++
			default:
				t.Fatalf("p=%v: kept value %v, want 1/(1-p) = %v", p, v, 1/(1-p))
			}
		}
		// The kept fraction is Binomial(n, 1-p)/n: standard deviation at most
		// 0.5/sqrt(n) ≈ 1.1e-3; allow 5 of them.
		if frac := float64(kept) / n; math.Abs(frac-(1-p)) > 5.6e-3 {
			t.Errorf("p=%v: kept %.4f of the elements, want %.4f", p, frac, 1-p)
		}
		if mean := sum / n; math.Abs(mean-1) > 0.02 {
			t.Errorf("p=%v: mean output %.4f, want 1 (inverted dropout keeps the expectation)", p, mean)
		}
	}
}

func ones(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = 1
	}
	return s
}

func TestDropoutSeeding(t *testing.T) {
	x := tensor.New(tensor.WithShape(1000), tensor.WithBacking(ones(1000)))
	run := func(seed uint64) []float32 {
		op, _ := NewDropout(0.5, seed)
		y, _ := op.Do(x)
		return append([]float32(nil), y.Data().([]float32)...)
	}
	a, b, c := run(7), run(7), run(8)
	same := func(u, v []float32) bool {
		for i := range u {
			if u[i] != v[i] {
				return false
			}
		}
		return true
	}
	if !same(a, b) {
		t.Error("same seed gave different masks")
	}
	if same(a, c) {
		t.Error("different seeds gave the same mask")
	}
	op, _ := NewDropout(0.5, 7)
	y1, _ := op.Do(x)
	m1 := append([]float32(nil), y1.Data().([]float32)...)
	y2, _ := op.Do(x)
	if same(m1, y2.Data().([]float32)) {
		t.Error("two runs of one op drew the same mask")
	}
}

func TestDropoutRejectsBadRate(t *testing.T) {
	for _, p := range []float64{-0.1, 1, 1.5, math.NaN()} {
		if _, err := NewDropout(p, 1); err == nil {
			t.Errorf("rate %v accepted", p)
		}
	}
}

// The gradient must use the mask of the same run: each finite-difference
// evaluation would draw a new mask, so the check compares the symbolic
// gradient with the forward pass's own y/x ratio instead.
func TestDropoutGradientUsesForwardMask(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	g := G.NewGraph()
	xv := gradcheck.RandTensor(rng, 0.5, 1.5, 4, 50)
	x := G.NewMatrix(g, G.Float32, G.WithShape(4, 50), G.WithValue(xv), G.WithName("x"))
	op, _ := NewDropout(0.25, 3)
	y, err := G.ApplyOp(op, x)
	if err != nil {
		t.Fatal(err)
	}
	cost, err := gradcheck.Project(y, tensor.New(tensor.WithShape(4, 50), tensor.WithBacking(ones(200))))
	if err != nil {
		t.Fatal(err)
	}
	grads, err := G.Grad(cost, x)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	for step := 0; step < 3; step++ {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		yv, gv := y.Value(), grads[0].Value()
		xd, yd, gd := xv.Data().([]float32), yv.Data().([]float32), gv.Data().([]float32)
		for i := range xd {
			// d(Σy)/dx_i = y_i/x_i exactly: the mask value 0 or 1/(1-p).
			if want := yd[i] / xd[i]; math.Abs(float64(gd[i]-want)) > 1e-6 {
				t.Fatalf("step %d: grad[%d] = %v, want %v", step, i, gd[i], want)
			}
		}
	}
}
