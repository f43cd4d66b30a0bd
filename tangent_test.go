package vat

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/org/vat/internal/ref64"
)

// net64 is the network conv 3×3 (ReLU) → max-pool 2×2 → dense → batch
// norm (its statistics fixed at the clean batch's) → ReLU → dense,
// written out in float64 from a Model's weights: the independent reference
// for the exact probe.
type net64 struct {
	ck, cb, d1, b1, gamma, beta, d2, b2 []float64
	mean, invStd                        []float64
	c, side, hid, classes               int
}

func newNet64(m *Model) *net64 {
	ps := m.Params()
	f := func(i int) []float64 { return ref64.Of(ps[i].Value.Data().([]float32)) }
	return &net64{ck: f(0), cb: f(1), d1: f(2), b1: f(3), gamma: f(4), beta: f(5), d2: f(6), b2: f(7),
		c: ps[0].Value.Shape()[0], side: m.inShape[1], hid: ps[3].Value.Shape()[0], classes: ps[7].Value.Shape()[0]}
}

// hidden returns the first dense layer's outputs (before batch norm).
func (n *net64) hidden(x []float64) []float64 {
	s, o := n.side, n.side-2
	conv := make([]float64, n.c*o*o)
	for f := 0; f < n.c; f++ {
		for i := 0; i < o; i++ {
			for j := 0; j < o; j++ {
				v := n.cb[f]
				for a := 0; a < 3; a++ {
					for b := 0; b < 3; b++ {
						v += n.ck[f*9+a*3+b] * x[(i+a)*s+j+b]
					}
				}
				conv[(f*o+i)*o+j] = math.Max(v, 0)
			}
		}
	}
	p := o / 2
	pool := make([]float64, n.c*p*p)
	for f := 0; f < n.c; f++ {
		for i := 0; i < p; i++ {
			for j := 0; j < p; j++ {
				at := func(a, b int) float64 { return conv[(f*o+2*i+a)*o+2*j+b] }
				pool[(f*p+i)*p+j] = math.Max(math.Max(at(0, 0), at(0, 1)), math.Max(at(1, 0), at(1, 1)))
			}
		}
	}
	h := make([]float64, n.hid)
	for k := range h {
		h[k] = n.b1[k]
		for i, v := range pool {
			h[k] += v * n.d1[i*n.hid+k]
		}
	}
	return h
}

// setStats fixes batch norm's statistics at those of the batch xs.
func (n *net64) setStats(xs [][]float64) {
	n.mean, n.invStd = make([]float64, n.hid), make([]float64, n.hid)
	hs := make([][]float64, len(xs))
	for i, x := range xs {
		hs[i] = n.hidden(x)
		for k, v := range hs[i] {
			n.mean[k] += v / float64(len(xs))
		}
	}
	for k := range n.invStd {
		var v float64
		for _, h := range hs {
			v += (h[k] - n.mean[k]) * (h[k] - n.mean[k]) / float64(len(xs))
		}
		n.invStd[k] = 1 / math.Sqrt(v+batchNormEps)
	}
}

func (n *net64) logits(x []float64) []float64 {
	h := n.hidden(x)
	for k := range h {
		h[k] = math.Max(n.gamma[k]*(h[k]-n.mean[k])*n.invStd[k]+n.beta[k], 0)
	}
	z := make([]float64, n.classes)
	for c := range z {
		z[c] = n.b2[c]
		for k, v := range h {
			z[c] += v * n.d2[k*n.classes+c]
		}
	}
	return z
}

// TestExactProbeMatchesFloat64: the exact probe's r_adv is the power
// iteration on H = JᵀFJ computed in float64, with J by central differences
// of the float64 network, from the same start; on fresh random weights and
// inputs, for one and three iterations. The network has batch
// normalization with the batch's statistics, so J is the whole batch's:
// every sample's logits depend on every sample's input through the
// statistics, and the reference's power iteration runs on the batch.
//
// The weights and inputs come from fixed seeds: with fresh ones, about one
// run in a hundred drew a network whose ReLUs were all off for most
// samples, or put a pre-activation within the float64 central difference's
// step of zero, where the reference (not the probe) is wrong.
func TestExactProbeMatchesFloat64(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		exactProbeCase(t, seed)
	}
}

func exactProbeCase(t *testing.T, seed uint64) {
	const side, batch = 8, 5
	m, err := Sequential([]int{1, side, side}, seed, Conv2D(3, 3), ReLU(), MaxPool2D(2), Flatten(),
		Dense(12), BatchNorm(), ReLU(), Dense(4))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 3))
	for _, p := range m.params { // biases and batch norm's γ, β too
		for i, d := 0, p.Value.Data().([]float32); i < len(d); i++ {
			d[i] = float32(r.NormFloat64()) * 0.7
		}
	}
	px := side * side
	x, noise := make([]float32, batch*px), make([]float32, batch*px)
	labels := make([]int, batch)
	for i := range x {
		x[i], noise[i] = r.Float32(), float32(r.NormFloat64())
	}
	net := newNet64(m)
	xs := make([][]float64, batch)
	for i := range xs {
		xs[i] = make([]float64, px)
		for j := range xs[i] {
			xs[i][j] = float64(x[i*px+j])
		}
	}
	// J of every sample's logits with respect to every input of the batch
	// (batch·classes × batch·px), by central differences of the float64
	// network with batch norm's statistics recomputed from the perturbed
	// batch, as the training pass computes them: through the statistics,
	// each sample's logits move with the other samples' inputs too.
	const h = 1e-6
	batchLogits := func() [][]float64 {
		net.setStats(xs)
		out := make([][]float64, batch)
		for i := range out {
			out[i] = net.logits(xs[i])
		}
		return out
	}
	k := net.classes
	jac := make([][]float64, batch*px) // jac[input][output]
	for i := 0; i < batch; i++ {
		for j := 0; j < px; j++ {
			v := xs[i][j]
			xs[i][j] = v + h
			zp := batchLogits()
			xs[i][j] = v - h
			zm := batchLogits()
			xs[i][j] = v
			col := make([]float64, batch*k)
			for o := 0; o < batch; o++ {
				for c := 0; c < k; c++ {
					col[o*k+c] = (zp[o][c] - zm[o][c]) / (2 * h)
				}
			}
			jac[i*px+j] = col
		}
	}
	clean := batchLogits()
	checked := 0
	defer func() {
		if checked < 4 { // most samples have some ReLU on and a curvature
			t.Errorf("only %d of %d checks had a nonzero curvature", checked, 2*batch)
		}
	}()
	for _, ip := range []int{1, 3} {
		g, err := m.Gradients(x, labels, noise, &VATConfig{Probe: Exact, Ip: ip, Eps: 2})
		if err != nil {
			t.Fatal(err)
		}
		// The power iteration of the implementation: d normalized per
		// sample, then ip times d ← Jᵀ F J d (F per sample), normalized per
		// sample.
		d := make([]float64, batch*px)
		for j := range d {
			d[j] = float64(noise[j])
		}
		normalize := func() {
			for i := 0; i < batch; i++ {
				if v := d[i*px : (i+1)*px]; slices.ContainsFunc(v, func(x float64) bool { return x != 0 }) {
					ref64.Normalize(v)
				}
			}
		}
		normalize()
		for it := 0; it < ip; it++ {
			a := make([]float64, batch*k)
			for j, v := range d {
				for o, jv := range jac[j] {
					a[o] += jv * v
				}
			}
			for o := 0; o < batch; o++ {
				p := ref64.Softmax(clean[o])
				var pa float64
				for c := range p {
					pa += p[c] * a[o*k+c]
				}
				for c := range p {
					a[o*k+c] = p[c] * (a[o*k+c] - pa)
				}
			}
			for j := range d {
				d[j] = 0
				for o, jv := range jac[j] {
					d[j] += jv * a[o]
				}
			}
			normalize()
		}
		for i := 0; i < batch; i++ {
			var norm, ref float64
			for j, v := range g.RAdv[i*px : (i+1)*px] {
				norm += float64(v) * float64(v)
				ref += d[i*px+j] * d[i*px+j]
			}
			if ref == 0 { // no curvature reaches this sample in float64: H = 0
				if norm != 0 {
					t.Errorf("%d iteration(s), sample %d: H = 0 in float64, ‖r_adv‖ = %v", ip, i, math.Sqrt(norm))
				}
				continue
			}
			checked++
			// One iteration: 0.999. Three amplify the float32 rounding of the
			// first where H's leading eigenvalues are close: 0.99.
			want := 0.999
			if ip > 1 {
				want = 0.99
			}
			if c := ref64.Cosine(d[i*px:(i+1)*px], g.RAdv[i*px:(i+1)*px]); !(c >= want) { // NaN fails too
				t.Errorf("seed %d, %d iteration(s), sample %d: cosine with the float64 power iteration %.6f, want >= %g", seed, ip, i, c, want)
			}
			if math.Abs(math.Sqrt(norm)-2) > 1e-4 {
				t.Errorf("sample %d: ‖r_adv‖ = %v, want ε = 2", i, math.Sqrt(norm))
			}
		}
	}
}

// TestExactProbeRejectsDropout: a network that drops while training has no
// tangent map here; the error names the option.
func TestExactProbeRejectsDropout(t *testing.T) {
	m, _ := NewModel(ModelConfig{Dropout: true})
	tr, err := NewTrainer(m, TrainConfig{Epochs: 1, VAT: &VATConfig{Probe: Exact}})
	if err != nil {
		t.Fatal(err)
	}
	train, _, err := LoadMNIST("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.TrainEpoch(t.Context(), train.Head(64)); err == nil || !strings.Contains(err.Error(), "Probe = Exact") {
		t.Fatalf("training with dropout and the exact probe: %v", err)
	}
}
