package vat

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/org/vat/internal/ref64"
	"github.com/org/vat/internal/rng"
)

// mlp64 is a Dense–ReLU–Dense network evaluated in float64 from a model's
// weights: the independent reference for the directions.
type mlp64 struct {
	w1, b1, w2, b2 []float64
	in, hid, out   int
}

func newMLP64(m *Model) mlp64 {
	ps := m.Params()
	f := func(i int) []float64 { return ref64.Of(ps[i].Value.Data().([]float32)) }
	s1, s2 := ps[0].Value.Shape(), ps[2].Value.Shape()
	return mlp64{w1: f(0), b1: f(1), w2: f(2), b2: f(3), in: s1[0], hid: s1[1], out: s2[1]}
}

// logProbs returns log softmax of the network's logits at x.
func (n mlp64) logProbs(x []float64) []float64 {
	h := make([]float64, n.hid)
	for j := range h {
		h[j] = n.b1[j]
		for i, v := range x {
			h[j] += v * n.w1[i*n.hid+j]
		}
		h[j] = math.Max(h[j], 0)
	}
	z := make([]float64, n.out)
	mx := math.Inf(-1)
	for k := range z {
		z[k] = n.b2[k]
		for j, v := range h {
			z[k] += v * n.w2[j*n.out+k]
		}
		mx = math.Max(mx, z[k])
	}
	var s float64
	for _, v := range z {
		s += math.Exp(v - mx)
	}
	for k := range z {
		z[k] -= mx + math.Log(s)
	}
	return z
}

// numGrad returns ∇f at x by central differences.
func numGrad(f func([]float64) float64, x []float64, h float64) []float64 {
	g := make([]float64, len(x))
	y := append([]float64(nil), x...)
	for i := range x {
		y[i] = x[i] + h
		fp := f(y)
		y[i] = x[i] - h
		fm := f(y)
		y[i] = x[i]
		g[i] = (fp - fm) / (2 * h)
	}
	return g
}

func scaled(x []float64, k float64) []float64 {
	var s float64
	for _, v := range x {
		s += v * v
	}
	o := make([]float64, len(x))
	for i, v := range x {
		o[i] = v * k / math.Sqrt(s)
	}
	return o
}

// TestDirectionsMatchFloat64 checks both adversarial directions against a
// float64 computation by finite differences, on fresh random inputs.
func TestDirectionsMatchFloat64(t *testing.T) {
	const in, samples, xi, seed = 12, 7, 0.5, 3
	m, err := Sequential([]int{in}, 21, Dense(16), ReLU(), Dense(4))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(uint64(rand.Int64()), 1))
	x := make([]float32, samples*in)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	labels := make([]int, samples)
	for i := range labels {
		labels[i] = r.IntN(4)
	}
	cfg := RobustnessConfig{VAT: VATConfig{Xi: xi}, Seed: seed}
	adv, err := m.Directions(x, labels, Adversarial, cfg)
	if err != nil {
		t.Fatal(err)
	}
	vadv, err := m.Directions(x, nil, VirtualAdversarial, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The power iteration's start: the stream Directions draws from.
	noise := make([]float32, len(x))
	g := rng.NewChunked(rng.SplitMix64(seed ^ rng.SplitMix64(rng.Noise)))
	g.Normals(noise)

	net := newMLP64(m)
	for i := 0; i < samples; i++ {
		xi64 := make([]float64, in)
		d := make([]float64, in)
		for j := range xi64 {
			xi64[j], d[j] = float64(x[i*in+j]), float64(noise[i*in+j])
		}
		ce := func(v []float64) float64 { return -net.logProbs(v)[labels[i]] }
		if c := ref64.Cosine(numGrad(ce, xi64, 1e-6), adv[i*in:(i+1)*in]); !(c >= 0.999) {
			t.Errorf("sample %d: adversarial direction's cosine with float64 %.6f, want >= 0.999", i, c)
		}
		lp := net.logProbs(xi64)
		kl := func(dd []float64) float64 { // KL(p(x) ‖ p(x + ξ·d/‖d‖))
			r := scaled(dd, xi)
			y := make([]float64, in)
			for j := range y {
				y[j] = xi64[j] + r[j]
			}
			lq := net.logProbs(y)
			var s float64
			for k := range lp {
				s += math.Exp(lp[k]) * (lp[k] - lq[k])
			}
			return s
		}
		if c := ref64.Cosine(numGrad(kl, d, 1e-6), vadv[i*in:(i+1)*in]); !(c >= 0.999) {
			t.Errorf("sample %d: virtual adversarial direction's cosine with float64 %.6f, want >= 0.999", i, c)
		}
	}
}

func TestRobustness(t *testing.T) {
	m, err := Sequential([]int{1, 10, 10}, 2, Conv2D(4, 3), BatchNorm(), ReLU(), MaxPool2D(2), Flatten(), Dense(5))
	if err != nil {
		t.Fatal(err)
	}
	d := syntheticData(t, 60, 4)
	randomizeWeights(m, 5)
	ev, err := m.Evaluate(d)
	if err != nil {
		t.Fatal(err)
	}
	pts, err := m.Robustness(d, RobustnessConfig{Eps: []float64{0, 1, 100}})
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 9 {
		t.Fatalf("%d points, want 3 directions × 3 norms", len(pts))
	}
	for _, p := range pts {
		if p.Eps == 0 && (p.Accuracy != ev.Accuracy || p.Changed != 0) {
			t.Errorf("%v at ε = 0: accuracy %v (Evaluate: %v), changed %v", p.Direction, p.Accuracy, ev.Accuracy, p.Changed)
		}
		if p.Accuracy < 0 || p.Accuracy > 1 || p.Changed < 0 || p.Changed > 1 {
			t.Errorf("%+v outside [0, 1]", p)
		}
	}
	for _, bad := range []RobustnessConfig{{Eps: []float64{-1}}, {Eps: []float64{math.NaN()}}, {Directions: []Direction{7}}, {VAT: VATConfig{Ip: -1}}} {
		if _, err := m.Robustness(d, bad); err == nil {
			t.Errorf("Robustness(%+v) accepted", bad)
		}
	}
	if _, err := m.Directions(d.Images, []int{1}, Adversarial, RobustnessConfig{}); err == nil {
		t.Error("Directions with too few labels accepted")
	}
}
