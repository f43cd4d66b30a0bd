package vat

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A network of every layer on small synthetic images (five classes: a
// bright square in one of five places): the parameters get the layers'
// names and shapes; 12 epochs of training with VAT lower the loss and
// classify at least 60 % (seen: loss 1.72 → 0.28, 100 %); inference gives
// one class per sample; data of another shape or with a label beyond the
// classes is refused.
func TestSequentialAllLayers(t *testing.T) {
	m, err := Sequential([]int{1, 10, 10}, 3,
		Conv2D(4, 3, Same), ReLU(), MaxPool2D(2), // 4×5×5
		Conv2D(6, 3), Dropout(0.2), ReLU(), // 6×3×3, a standalone ReLU after dropout
		Flatten(), Dense(12), ReLU(), Dense(5))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var shapes [][]int
	for _, p := range m.Params() {
		names = append(names, p.Name)
		shapes = append(shapes, []int(p.Value.Shape()))
	}
	wantNames := []string{"conv1/kernel", "conv1/bias", "conv2/kernel", "conv2/bias", "dense1/kernel", "dense1/bias", "dense2/kernel", "dense2/bias"}
	wantShapes := [][]int{{4, 1, 3, 3}, {4}, {6, 4, 3, 3}, {6}, {54, 12}, {12}, {12, 5}, {5}}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("names %v, want %v", names, wantNames)
	}
	for i := range wantShapes {
		if !slices.Equal(shapes[i], wantShapes[i]) {
			t.Fatalf("%s: shape %v, want %v", names[i], shapes[i], wantShapes[i])
		}
	}
	if m.Classes() != 5 || !slices.Equal(m.InputShape(), []int{1, 10, 10}) {
		t.Fatalf("classes %d, input %v", m.Classes(), m.InputShape())
	}
	// Five classes of 10×10 images: a bright square in one of five places.
	rng := rand.New(rand.NewPCG(4, 4))
	d := &Dataset{Rows: 10, Cols: 10}
	for i := 0; i < 200; i++ {
		c := i % 5
		img := make([]float32, 100)
		for j := range img {
			img[j] = float32(0.1 * rng.Float64())
		}
		for y := 0; y < 3; y++ {
			for x := 0; x < 3; x++ {
				img[(1+2*c/2+y)*10+1+(c%3)*3+x] = 1
			}
		}
		d.Images = append(d.Images, img...)
		d.Labels = append(d.Labels, c)
	}
	tr, err := NewTrainer(m, TrainConfig{Epochs: 12, BatchSize: 20, Seed: 5, VAT: &VATConfig{Eps: 0.5}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := tr.Fit(context.Background(), d, d)
	if err != nil {
		t.Fatal(err)
	}
	first, last := res[0], res[len(res)-1]
	t.Logf("train loss %.3f → %.3f, accuracy %.1f %%", first.TrainLoss, last.TrainLoss, 100*last.TestAccuracy)
	if !(last.TrainLoss < first.TrainLoss) || last.TestAccuracy < 0.6 {
		t.Fatalf("did not learn: %+v → %+v", first, last)
	}
	pred, err := m.Predict(d.Images[:3*100])
	if err != nil || len(pred) != 3 {
		t.Fatalf("Predict: %v, %v", pred, err)
	}
	if _, err := m.Evaluate(&Dataset{Images: make([]float32, 784), Labels: []int{1}, Rows: 28, Cols: 28}); err == nil || !strings.Contains(err.Error(), "[1 10 10]") {
		t.Fatalf("28×28 data for a 1×10×10 model: error %v", err)
	}
	if _, err := m.Evaluate(&Dataset{Images: make([]float32, 100), Labels: []int{7}, Rows: 10, Cols: 10}); err == nil {
		t.Fatal("label 7 accepted by a 5-class model")
	}
}

// An MLP on flat inputs learns MNIST with the package's trainer and VAT:
// at least 80 % of 1,000 test images after 3 epochs on 5,000 (seen: 84.7 %).
func TestSequentialMLPLearnsMNIST(t *testing.T) {
	train, test := loadMNIST(t)
	m, err := Sequential([]int{784}, 1, Dense(64), ReLU(), Dense(10))
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := NewTrainer(m, TrainConfig{Epochs: 3, Seed: 1, VAT: &VATConfig{}})
	res, err := tr.Fit(context.Background(), train.Head(5000), test.Head(1000))
	if err != nil {
		t.Fatal(err)
	}
	acc := res[len(res)-1].TestAccuracy
	t.Logf("MLP with VAT: %.1f %% after 3 epochs on 5,000 images", 100*acc)
	if acc < 0.8 {
		t.Fatalf("test accuracy %.1f %%, want >= 80 %%", 100*acc)
	}
}

func TestSequentialRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     []int
		layers []Layer
		want   string
	}{
		{"no layers", []int{1, 8, 8}, nil, "no layers"},
		{"last not dense", []int{1, 8, 8}, []Layer{Dense(3), ReLU()}, "want Dense"},
		{"bad input", []int{1, 0, 8}, []Layer{Dense(3)}, "input shape"},
		{"kernel too large", []int{1, 4, 4}, []Layer{Conv2D(2, 5), Dense(3)}, "smaller than the kernel"},
		{"same with even kernel", []int{1, 8, 8}, []Layer{Conv2D(2, 4, Same), Dense(3)}, "odd kernel"},
		{"conv after flatten", []int{1, 8, 8}, []Layer{Flatten(), Conv2D(2, 3), Dense(3)}, "C×H×W"},
		{"pool 3", []int{1, 8, 8}, []Layer{MaxPool2D(3), Dense(3)}, "only 2×2"},
		{"dropout 1", []int{4}, []Layer{Dropout(1), Dense(3)}, "Dropout(1)"},
		{"dense 0", []int{4}, []Layer{Dense(0)}, "Dense(0)"},
		{"nil layer", []int{4}, []Layer{nil, Dense(2)}, "layer 1 is nil"},
	} {
		_, err := Sequential(tc.in, 1, tc.layers...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
}

// Datasets of the caller's own samples: three-channel 6×6 images of three
// classes (the class's channel is bright) train a small network; every
// inconsistency in NewDataset's arguments is an error that says what.
func TestNewDataset(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	var x []float32
	var labels []int
	for i := 0; i < 90; i++ {
		c := i % 3
		for ch := 0; ch < 3; ch++ {
			for p := 0; p < 36; p++ {
				v := float32(0.2 * rng.Float64())
				if ch == c {
					v += 0.8
				}
				x = append(x, v)
			}
		}
		labels = append(labels, c)
	}
	d, err := NewDataset(x, []int{3, 6, 6}, labels, 3)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Sequential([]int{3, 6, 6}, 2, Conv2D(4, 3), ReLU(), Flatten(), Dense(3))
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := NewTrainer(m, TrainConfig{Epochs: 8, BatchSize: 15, Seed: 2, VAT: &VATConfig{Eps: 0.3}})
	res, err := tr.Fit(context.Background(), d, d.Head(30))
	if err != nil {
		t.Fatal(err)
	}
	if acc := res[len(res)-1].TestAccuracy; acc < 0.9 {
		t.Fatalf("accuracy %.1f %% on an easy three-class set", 100*acc)
	}
	if _, err := m.Evaluate(&Dataset{Images: make([]float32, 108), Labels: []int{0}, Shape: []int{3, 4, 9}}); err == nil {
		t.Fatal("samples of 3×4×9 accepted by a 3×6×6 model")
	}
	for _, tc := range []struct {
		name    string
		x       []float32
		shape   []int
		labels  []int
		classes int
		want    string
	}{
		{"rank 2", make([]float32, 8), []int{2, 4}, []int{0}, 2, "C×H×W or a flat length"},
		{"zero size", nil, []int{0}, []int{0}, 2, "positive sizes"},
		{"too many classes", make([]float32, 4), []int{4}, []int{0}, 70000, "1 to 65536"},
		{"no samples", nil, []int{4}, nil, 2, "no samples"},
		{"value count", make([]float32, 7), []int{4}, []int{0, 1}, 2, "(8 for 2)"},
		{"label range", make([]float32, 8), []int{4}, []int{0, 2}, 2, "label 2 of sample 1"},
	} {
		if _, err := NewDataset(tc.x, tc.shape, tc.labels, tc.classes); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
}

// Batch normalization's running averages move only in the clean training
// pass: one VAT step and one plain step from the same weights on the same
// batch leave them bit-identical (VAT's probe and adversarial passes would
// move them otherwise), and different from where they started;
// Model.Gradients leaves them alone. A network with batch normalization
// learns the easy synthetic set, and inference (running averages) agrees.
func TestBatchNormLayer(t *testing.T) {
	build := func() *Model {
		m, err := Sequential([]int{1, 10, 10}, 6, Conv2D(4, 3), BatchNorm(), ReLU(), MaxPool2D(2),
			Flatten(), Dense(16), BatchNorm(), ReLU(), Dense(5))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	rng := rand.New(rand.NewPCG(8, 8))
	var x []float32
	var labels []int
	for i := 0; i < 100; i++ {
		c := i % 5
		for j := 0; j < 100; j++ {
			v := float32(0.3 * rng.Float64())
			if j/20 == c {
				v += 0.7
			}
			x = append(x, v)
		}
		labels = append(labels, c)
	}
	d, err := NewDataset(x, []int{1, 10, 10}, labels, 5)
	if err != nil {
		t.Fatal(err)
	}
	stats := func(m *Model) []float32 {
		var out []float32
		for _, st := range m.stats {
			if st != nil {
				out = append(out, st[0]...)
				out = append(out, st[1]...)
			}
		}
		return out
	}
	withVAT, plain := build(), build()
	initial := stats(withVAT)
	if _, err := withVAT.Gradients(d.Images[:10*100], labels[:10], d.Images[:10*100], &VATConfig{}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(stats(withVAT), initial) {
		t.Fatal("Gradients moved the running averages")
	}
	for _, tc := range []struct {
		m   *Model
		vat *VATConfig
	}{{withVAT, &VATConfig{}}, {plain, nil}} {
		tr, _ := NewTrainer(tc.m, TrainConfig{BatchSize: 100, Seed: 3, VAT: tc.vat})
		if _, err := tr.TrainEpoch(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	a, b := stats(withVAT), stats(plain)
	if !slices.Equal(a, b) {
		t.Fatalf("running averages after a VAT step %v, after a plain step %v", a[:4], b[:4])
	}
	if slices.Equal(a, initial) {
		t.Fatal("the running averages did not move")
	}
	tr, _ := NewTrainer(withVAT, TrainConfig{Epochs: 10, BatchSize: 20, Seed: 3, VAT: &VATConfig{Eps: 0.5}})
	res, err := tr.Fit(context.Background(), d, d)
	if err != nil {
		t.Fatal(err)
	}
	if acc := res[len(res)-1].TestAccuracy; acc < 0.9 {
		t.Fatalf("accuracy with batch normalization %.1f %%", 100*acc)
	}
}

// GaussianNoise: inference adds nothing (the same outputs as the network
// without it, same weights); training draws fresh noise every pass, seeded
// (two trainers from one seed agree bit for bit, another seed differs); the
// exact probe accepts it; the layer survives a save and LoadModel; and bad
// deviations are errors naming the layer.
func TestGaussianNoiseLayer(t *testing.T) {
	layers := func(noisy bool) []Layer {
		ls := []Layer{Flatten(), Dense(16), ReLU()}
		if noisy {
			ls = append(ls, GaussianNoise(0.5))
		}
		return append(ls, Dense(5))
	}
	rng := rand.New(rand.NewPCG(rand.Uint64(), 9))
	x := make([]float32, 40*36)
	labels := make([]int, 40)
	for i := range x {
		x[i] = float32(rng.Float64())
	}
	for i := range labels {
		labels[i] = i % 5
	}
	d, err := NewDataset(x, []int{1, 6, 6}, labels, 5)
	if err != nil {
		t.Fatal(err)
	}
	noisy, err := Sequential([]int{1, 6, 6}, 4, layers(true)...)
	if err != nil {
		t.Fatal(err)
	}
	clean, _ := Sequential([]int{1, 6, 6}, 4, layers(false)...)
	a, err := noisy.Evaluate(d)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := clean.Evaluate(d)
	if a != b {
		t.Fatalf("inference with noise layers %+v, without %+v", a, b)
	}
	train := func(seed uint64) []float32 {
		m, _ := Sequential([]int{1, 6, 6}, 4, layers(true)...)
		tr, err := NewTrainer(m, TrainConfig{BatchSize: 20, Seed: seed, VAT: &VATConfig{Probe: Exact}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.TrainEpoch(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		var w []float32
		for _, p := range m.Params() {
			w = append(w, p.Value.Data().([]float32)...)
		}
		return w
	}
	w1, w2, w3 := train(1), train(1), train(2)
	if !slices.Equal(w1, w2) {
		t.Fatal("one seed, two different trainings")
	}
	if slices.Equal(w1, w3) {
		t.Fatal("two seeds, the same training: is the noise drawn?")
	}
	path := filepath.Join(t.TempDir(), "noisy.safetensors")
	if err := noisy.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := LoadModel(path)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := back.Evaluate(d); c != a {
		t.Fatalf("after LoadModel %+v, before %+v", c, a)
	}
	for _, bad := range []float64{0, -1, math.NaN(), 1e9} {
		if _, err := Sequential([]int{1, 6, 6}, 4, Flatten(), GaussianNoise(bad), Dense(5)); err == nil || !strings.Contains(err.Error(), "GaussianNoise") {
			t.Errorf("GaussianNoise(%v): error %v", bad, err)
		}
	}
}
