package vat

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/org/vat/internal/gradcheck"
)

// weightHash is an FNV hash of every weight's bits.
func weightHash(m *Model) uint64 {
	h := fnv.New64a()
	for _, p := range m.Params() {
		for _, v := range p.Value.Data().([]float32) {
			b := math.Float32bits(v)
			h.Write([]byte{byte(b), byte(b >> 8), byte(b >> 16), byte(b >> 24)})
		}
	}
	return h.Sum64()
}

// Model.Gradients against computations that do not share its graph:
//   - LDS equals the batch mean of KL(p(y|x) ‖ p(y|x + r_adv)), computed in
//     float64 from Model.Probabilities of the images and of the images
//     plus r_adv; each sample of r_adv has norm ε; Loss = CE + α·LDS;
//   - without VAT, the directional derivatives along the gradient and
//     along a random direction in dense2's kernel equal central differences
//     of Loss (weights moved through Params; 2 % with h = 1e-2: seen 1.2 %
//     and 0.02 %);
//   - nothing is updated (the weights' hash is unchanged), two calls agree
//     bit for bit, and a model built with dropout computes as one without.
func TestModelGradients(t *testing.T) {
	train, _ := loadMNIST(t)
	const n = 6
	px := ImageRows * ImageCols
	images := train.Images[:n*px]
	labels := make([]int, n)
	for i := range labels {
		labels[i] = int(train.Labels[i])
	}
	noise := gradcheck.RandTensor(rand.New(rand.NewPCG(1, 2)), -1, 1, n*px).Data().([]float32)
	m, _ := NewModel(ModelConfig{Seed: 2})
	before := weightHash(m)
	cfg := &VATConfig{Eps: 1.5, Alpha: 0.7}
	g, err := m.Gradients(images, labels, noise, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if weightHash(m) != before {
		t.Fatal("Gradients changed the weights")
	}
	p, err := m.Probabilities(images)
	if err != nil {
		t.Fatal(err)
	}
	moved := make([]float32, len(images))
	for i := range moved {
		moved[i] = images[i] + g.RAdv[i]
	}
	q, err := m.Probabilities(moved)
	if err != nil {
		t.Fatal(err)
	}
	var kl float64
	for i := range p {
		if p[i] > 0 {
			kl += float64(p[i]) * (math.Log(float64(p[i])) - math.Log(float64(q[i])))
		}
	}
	kl /= n
	if math.Abs(kl-g.LDS) > 1e-4*math.Max(kl, 1e-3) || !(g.LDS > 0) {
		t.Fatalf("LDS %v, KL of Probabilities %v", g.LDS, kl)
	}
	for i := 0; i < n; i++ {
		if norm := gradcheck.Norm(g.RAdv[i*px : (i+1)*px]); math.Abs(norm-1.5) > 1e-5 {
			t.Fatalf("r_adv of image %d has norm %v, want 1.5", i, norm)
		}
	}
	if math.Abs(g.Loss-(g.CE+0.7*g.LDS)) > 1e-5*g.Loss {
		t.Fatalf("Loss %v, CE %v + 0.7·LDS %v", g.Loss, g.CE, g.LDS)
	}
	again, _ := m.Gradients(images, labels, noise, cfg)
	withDropout, _ := NewModel(ModelConfig{Seed: 2, Dropout: true})
	dropped, err := withDropout.Gradients(images, labels, noise, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range g.Params {
		a, b, c := g.Params[i].Value.Data().([]float32), again.Params[i].Value.Data().([]float32), dropped.Params[i].Value.Data().([]float32)
		for j := range a {
			if a[j] != b[j] || a[j] != c[j] {
				t.Fatalf("%s[%d]: %v, again %v, with a dropout model %v", g.Params[i].Name, j, a[j], b[j], c[j])
			}
		}
	}

	// Without VAT: directional derivatives against central differences of
	// Loss, along the gradient itself and along a random direction in one
	// layer's kernel (a random direction in all 600,810 weights would give
	// a derivative too small to test).
	plain, err := m.Gradients(images, labels, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	alongGrad := make([][]float32, len(plain.Params))
	inLayer := make([][]float32, len(plain.Params))
	for i, prm := range plain.Params {
		alongGrad[i] = append([]float32(nil), prm.Value.Data().([]float32)...)
		inLayer[i] = make([]float32, prm.Value.Shape().TotalSize())
		if prm.Name == "dense2/kernel" {
			inLayer[i] = gradcheck.RandTensor(rng, -1, 1, len(inLayer[i])).Data().([]float32)
		}
	}
	for _, d := range []struct {
		name string
		dir  [][]float32
	}{{"the gradient", alongGrad}, {"dense2/kernel", inLayer}} {
		var analytic, norm2 float64
		for i := range d.dir {
			for j, v := range d.dir[i] {
				norm2 += float64(v) * float64(v)
				analytic += float64(v) * float64(plain.Params[i].Value.Data().([]float32)[j])
			}
		}
		analytic /= math.Sqrt(norm2)
		const h = 1e-2
		shift := func(c float64) float64 {
			for i, prm := range m.Params() {
				w := prm.Value.Data().([]float32)
				for j := range w {
					w[j] += float32(c * float64(d.dir[i][j]) / math.Sqrt(norm2))
				}
			}
			r, err := m.Gradients(images, labels, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			return r.Loss
		}
		up := shift(h)
		down := shift(-2 * h)
		shift(h) // back, to rounding
		fd := (up - down) / (2 * h)
		t.Logf("along %s: directional derivative %.6f, central difference %.6f", d.name, analytic, fd)
		if math.Abs(fd-analytic) > 1e-4+2e-2*math.Abs(analytic) {
			t.Fatalf("along %s: directional derivative %v, central difference %v", d.name, analytic, fd)
		}
	}

	for _, bad := range []struct {
		name   string
		images []float32
		labels []int
		noise  []float32
		cfg    *VATConfig
	}{
		{"no images", nil, nil, nil, nil},
		{"label count", images, labels[:2], nil, nil},
		{"label range", images, []int{0, 1, 2, 3, 4, 10}, nil, nil},
		{"noise size", images, labels, noise[:10], &VATConfig{}},
		{"bad Xi", images, labels, noise, &VATConfig{Xi: -1}},
	} {
		if _, err := m.Gradients(bad.images, bad.labels, bad.noise, bad.cfg); err == nil {
			t.Errorf("%s: no error", bad.name)
		}
	}
}
