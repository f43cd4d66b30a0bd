package vat

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/backend/gputest"
	"github.com/org/vat/internal/ref64"
)

// leakyNet is x (6) → Dense(8) → LeakyReLU(0.2) → Dense(3), on fresh
// random weights with random biases.
func leakyNet(t *testing.T, r *rand.Rand) *Model {
	m, err := Sequential([]int{6}, r.Uint64(), Dense(8), LeakyReLU(0.2), Dense(3))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.params {
		for i, d := 0, p.Value.Data().([]float32); i < len(d); i++ {
			d[i] = float32(r.NormFloat64())
		}
	}
	return m
}

// leaky64 is leakyNet's network in float64: its logits and its Jacobian
// J = W₂ᵀ·diag(s)·W₁ᵀ, s being 1 or the slope where the hidden unit is
// positive or not.
func leaky64(m *Model, x []float64) (logits []float64, jac [][]float64) {
	w1, b1 := ref64.Of(m.params[0].Value.Data().([]float32)), ref64.Of(m.params[1].Value.Data().([]float32))
	w2, b2 := ref64.Of(m.params[2].Value.Data().([]float32)), ref64.Of(m.params[3].Value.Data().([]float32))
	const in, hid, out = 6, 8, 3
	slope := float64(float32(0.2))
	h, s := make([]float64, hid), make([]float64, hid)
	for k := range h {
		h[k] = b1[k]
		for i := 0; i < in; i++ {
			h[k] += x[i] * w1[i*hid+k]
		}
		s[k] = 1
		if h[k] <= 0 {
			s[k], h[k] = slope, slope*h[k]
		}
	}
	logits = make([]float64, out)
	jac = make([][]float64, out) // jac[c][i] = ∂logit_c/∂x_i
	for c := range logits {
		logits[c] = b2[c]
		jac[c] = make([]float64, in)
		for k := 0; k < hid; k++ {
			logits[c] += h[k] * w2[k*out+c]
			for i := 0; i < in; i++ {
				jac[c][i] += w2[k*out+c] * s[k] * w1[i*hid+k]
			}
		}
	}
	return logits, jac
}

// TestLeakyReLULayer: the layer in every use a layer has. Its loss and
// weight gradients match the float64 network; the exact probe's r_adv is
// the float64 power iteration on JᵀFJ; a model with it saves, rebuilds
// from the file and predicts the same; it trains, on the CPU and on each
// GPU device (where it runs on the host copies).
func TestLeakyReLULayer(t *testing.T) {
	r := rand.New(rand.NewPCG(uint64(rand.Int64()), 41))
	const n = 4
	m := leakyNet(t, r)
	x, noise := make([]float32, n*6), make([]float32, n*6)
	labels := make([]int, n)
	for i := range x {
		x[i], noise[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
	}
	for i := range labels {
		labels[i] = r.IntN(3)
	}
	g, err := m.Gradients(x, labels, noise, &VATConfig{Probe: Exact, Eps: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	var ce float64
	for i := 0; i < n; i++ {
		xi := ref64.Of(x[i*6 : (i+1)*6])
		logits, jac := leaky64(m, xi)
		p := ref64.Softmax(logits)
		ce -= math.Log(p[labels[i]]) / n
		// One power iteration from the same start: d ← JᵀFJd / ‖·‖.
		d := ref64.Of(noise[i*6 : (i+1)*6])
		ref64.Normalize(d)
		a := make([]float64, 3)
		for c := range a {
			for j, v := range d {
				a[c] += jac[c][j] * v
			}
		}
		var pa float64
		for c := range a {
			pa += p[c] * a[c]
		}
		hd := make([]float64, 6)
		for c := range a {
			for j := range hd {
				hd[j] += jac[c][j] * p[c] * (a[c] - pa)
			}
		}
		if cos := ref64.Cosine(hd, g.RAdv[i*6:(i+1)*6]); !(cos > 0.9999) {
			t.Errorf("sample %d: exact probe's r_adv has cosine %v with the float64 power iteration", i, cos)
		}
	}
	if math.Abs(g.CE-ce) > 1e-5*math.Max(1, ce) {
		t.Errorf("cross-entropy %v, float64 %v", g.CE, ce)
	}

	// Save, rebuild from the file alone, predict the same.
	path := filepath.Join(t.TempDir(), "leaky.safetensors")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := LoadModel(path)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := m.Probabilities(x)
	got, err := back.Probabilities(x)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("rebuilt model's probabilities %v (%v), want %v", got, err, want)
	}

	// Trains, on the CPU and on every device; the devices match the CPU.
	data := learnable(t, 96, 2)
	train := func() []float32 {
		mm, err := Sequential([]int{1, 10, 10}, 3, Flatten(), Dense(16), LeakyReLU(0.1), Dense(5))
		if err != nil {
			t.Fatal(err)
		}
		tr, err := NewTrainer(mm, TrainConfig{Epochs: 3, BatchSize: 32, VAT: &VATConfig{Probe: Exact, Eps: 0.5}, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		res, err := tr.Fit(context.Background(), data, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !(res[2].TrainCE < res[0].TrainCE) {
			t.Errorf("cross-entropy %v → %v: not learning", res[0].TrainCE, res[2].TrainCE)
		}
		return slices.Clone(mm.Params()[0].Value.Data().([]float32))
	}
	cpu := train()
	for _, dev := range gputest.KernelDevices(t) {
		if a := gputest.With(t, dev.Dev); a != nil {
			a.SetHostNormals(true)
		}
		got := train()
		backend.Use(nil)
		gputest.CloseToBut(t, dev.Name+": first kernel after training", got, cpu, 1e-4, gputest.ReluFlips(len(cpu)))
	}
}
