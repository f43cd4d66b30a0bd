package vat

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/gradcheck"
	"github.com/org/vat/internal/ops"
	"github.com/org/vat/internal/toydata"
)

// softmax64 is the textbook softmax in float64, without the max shift:
// an independent reference for logits of moderate size.
func softmax64(z []float32) []float64 {
	p := make([]float64, len(z))
	var s float64
	for i, v := range z {
		p[i] = math.Exp(float64(v))
		s += p[i]
	}
	for i := range p {
		p[i] /= s
	}
	return p
}

// evalScalar runs a one-op graph on the given values and returns its result.
func evalScalar(t *testing.T, build func(in []*G.Node) (*G.Node, error), vals ...*tensor.Dense) float64 {
	t.Helper()
	g := G.NewGraph()
	in := make([]*G.Node, len(vals))
	for i, v := range vals {
		in[i] = G.NewMatrix(g, G.Float32, G.WithShape(v.Shape()...), G.WithValue(v), G.WithName(string(rune('a'+i))))
	}
	out, err := build(in)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	s, err := ops.Scalar32("out", 0, out.Value())
	if err != nil {
		t.Fatal(err)
	}
	return float64(s)
}

func oneHot(rng *rand.Rand, n, k int) *tensor.Dense {
	y := tensor.New(tensor.WithShape(n, k), tensor.Of(tensor.Float32))
	for i := 0; i < n; i++ {
		y.Data().([]float32)[i*k+rng.IntN(k)] = 1
	}
	return y
}

func TestLossesMatchFloat64(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, sh := range [][2]int{{1, 2}, {5, 10}, {128, 10}} {
		n, k := sh[0], sh[1]
		a, b := gradcheck.RandTensor(rng, -4, 4, n, k), gradcheck.RandTensor(rng, -4, 4, n, k)
		y := oneHot(rng, n, k)
		var ce, kl, ent float64
		for i := 0; i < n; i++ {
			p := softmax64(a.Data().([]float32)[i*k : (i+1)*k])
			q := softmax64(b.Data().([]float32)[i*k : (i+1)*k])
			for j := 0; j < k; j++ {
				ce -= float64(y.Data().([]float32)[i*k+j]) * math.Log(p[j])
				kl += p[j] * math.Log(p[j]/q[j])
				ent -= p[j] * math.Log(p[j])
			}
		}
		// float32 results of sums of order 1..10^3: relative 1e-6 of rounding.
		for _, c := range []struct {
			name      string
			got, want float64
		}{
			{"CrossEntropy", evalScalar(t, func(in []*G.Node) (*G.Node, error) { return CrossEntropy(in[0], in[1]) }, a, y), ce / float64(n)},
			{"KL mean", evalScalar(t, func(in []*G.Node) (*G.Node, error) { return KLDivergence(in[0], in[1], Mean) }, a, b), kl / float64(n)},
			{"KL sum", evalScalar(t, func(in []*G.Node) (*G.Node, error) { return KLDivergence(in[0], in[1], Sum) }, a, b), kl},
			{"Entropy", evalScalar(t, func(in []*G.Node) (*G.Node, error) { return Entropy(in[0]) }, a), ent / float64(n)},
		} {
			if math.Abs(c.got-c.want) > 1e-5*math.Max(1, math.Abs(c.want)) {
				t.Errorf("%s %dx%d: got %.8g, want %.8g", c.name, n, k, c.got, c.want)
			}
		}
	}
}

// Logits far beyond exp's float32 range must still give finite losses.
func TestLossesStableForLargeLogits(t *testing.T) {
	a := tensor.New(tensor.WithShape(1, 3), tensor.WithBacking([]float32{1000, -1000, 0}))
	b := tensor.New(tensor.WithShape(1, 3), tensor.WithBacking([]float32{0, 1000, -1000}))
	y := tensor.New(tensor.WithShape(1, 3), tensor.WithBacking([]float32{0, 1, 0}))
	ce := evalScalar(t, func(in []*G.Node) (*G.Node, error) { return CrossEntropy(in[0], in[1]) }, a, y)
	kl := evalScalar(t, func(in []*G.Node) (*G.Node, error) { return KLDivergence(in[0], in[1], Mean) }, a, b)
	if math.Abs(ce-2000) > 1e-2 || math.Abs(kl-1000) > 1e-2 {
		t.Fatalf("CE = %v (want 2000), KL = %v (want 1000)", ce, kl)
	}
}

func TestLossGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 10))
	soft := gradcheck.RandTensor(rng, 0, 1, 4, 5) // soft targets, rows not normalized
	for _, c := range []gradcheck.Case{
		{Name: "CrossEntropy one-hot", Inputs: []*tensor.Dense{gradcheck.RandTensor(rng, -2, 2, 4, 5), oneHot(rng, 4, 5)}, Wrt: []int{0},
			Build: func(in []*G.Node) (*G.Node, error) { return CrossEntropy(in[0], in[1]) }},
		{Name: "CrossEntropy soft", Inputs: []*tensor.Dense{gradcheck.RandTensor(rng, -2, 2, 4, 5), soft}, Wrt: []int{0},
			Build: func(in []*G.Node) (*G.Node, error) { return CrossEntropy(in[0], in[1]) }},
		{Name: "KL mean", Inputs: []*tensor.Dense{gradcheck.RandTensor(rng, -2, 2, 3, 4), gradcheck.RandTensor(rng, -2, 2, 3, 4)}, Wrt: []int{0, 1},
			Build: func(in []*G.Node) (*G.Node, error) { return KLDivergence(in[0], in[1], Mean) }},
		{Name: "KL sum", Inputs: []*tensor.Dense{gradcheck.RandTensor(rng, -2, 2, 3, 4), gradcheck.RandTensor(rng, -2, 2, 3, 4)}, Wrt: []int{0, 1},
			Build: func(in []*G.Node) (*G.Node, error) { return KLDivergence(in[0], in[1], Sum) }},
		{Name: "Entropy", Inputs: []*tensor.Dense{gradcheck.RandTensor(rng, -2, 2, 3, 6)}, Wrt: []int{0},
			Build: func(in []*G.Node) (*G.Node, error) { return Entropy(in[0]) }},
	} {
		gradcheck.Check(t, 11, c)
	}
}

func TestJointLossGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 16))
	gradcheck.Check(t, 17, gradcheck.Case{
		Name:   "CE+αKL",
		Inputs: []*tensor.Dense{gradcheck.RandTensor(rng, -2, 2, 4, 5), oneHot(rng, 4, 5), gradcheck.RandTensor(rng, -2, 2, 4, 5)},
		Wrt:    []int{0, 2},
		Build:  func(in []*G.Node) (*G.Node, error) { return G.ApplyOp(ops.NewJointLoss(0.6), in[0], in[1], in[2]) },
	})
}

// TestClassBalancePrior: ClassBalance refuses priors that are not
// distributions with every class possible, naming what is wrong, and
// computes KL(p̄ ‖ π) = 0 when the mean prediction is the prior.
func TestClassBalancePrior(t *testing.T) {
	for _, tc := range []struct {
		prior []float64
		want  string
	}{
		{nil, "0 classes"},
		{[]float64{1}, "1 classes"},
		{[]float64{0.5, 0, 0.5}, "prior[1]"},
		{[]float64{0.5, math.NaN()}, "prior[1]"},
		{[]float64{0.5, 0.6}, "sums to"},
	} {
		g := G.NewGraph()
		z := G.NewMatrix(g, G.Float32, G.WithShape(2, max(2, len(tc.prior))), G.WithName("z"))
		if _, err := ClassBalance(z, tc.prior); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ClassBalance with prior %v: %v, want an error naming %q", tc.prior, err, tc.want)
		}
	}
	// Logits whose softmax rows average to (0.25, 0.75): log-odds rows
	// (0, log 3) for both samples.
	z := tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float32{0, float32(math.Log(3)), 0, float32(math.Log(3))}))
	got := evalScalar(t, func(in []*G.Node) (*G.Node, error) { return ClassBalance(in[0], []float64{0.25, 0.75}) }, z)
	if math.Abs(got) > 1e-6 {
		t.Errorf("KL of the prior from itself = %v, want 0", got)
	}
	if want := 0.25*math.Log(0.25/0.5) + 0.75*math.Log(0.75/0.5); math.Abs(evalScalar(t, func(in []*G.Node) (*G.Node, error) { return ClassBalance(in[0], []float64{0.5, 0.5}) }, z)-want) > 1e-6 {
		t.Errorf("KL from the uniform prior differs from %v", want)
	}
	// A labeled set without one of the classes has no prior for it.
	x, l := toydata.Blobs(30, 4, 3, 3, 1)
	for i := range l {
		l[i] %= 2 // classes 0 and 1 only
	}
	ds, err := NewDataset(x, []int{4}, l, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := classPrior(ds, 3); err == nil || !strings.Contains(err.Error(), "class 2") {
		t.Errorf("classPrior without class 2: %v, want an error naming class 2", err)
	}
}
