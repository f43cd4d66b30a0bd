package vat

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// randomizeWeights gives every weight and running statistic a fresh random
// value, so that a round trip cannot pass by reading back initial values.
func randomizeWeights(m *Model, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 7))
	for _, p := range m.params {
		for i, d := 0, p.Value.Data().([]float32); i < len(d); i++ {
			d[i] = float32(r.NormFloat64())
		}
	}
	for i, st := range m.stats {
		if st != nil {
			for j := range st[0] {
				st[0][j], st[1][j] = float32(r.NormFloat64()), 0.5+r.Float32()
			}
			m.bnBatches[i] = int64(r.IntN(1000))
		}
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	preset, _ := NewModel(ModelConfig{Dropout: true, Seed: 3})
	seq, err := Sequential([]int{2, 9, 8}, 5, Conv2D(3, 3, Same), BatchNorm(), ReLU(), MaxPool2D(2), Dropout(0.3),
		Flatten(), Dense(7), BatchNorm(), ReLU(), Dense(4))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		m     *Model
		names []string
	}{
		{"preset", preset, []string{"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}},
		{"sequential", seq, []string{"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked",
			"6.weight", "6.bias", "7.weight", "7.bias", "7.running_mean", "7.running_var", "7.num_batches_tracked", "9.weight", "9.bias"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.m.StateDictNames(); !slices.Equal(got, tc.names) {
				t.Fatalf("names %v, want %v", got, tc.names)
			}
			randomizeWeights(tc.m, 11)
			path := filepath.Join(t.TempDir(), "w.safetensors")
			if err := tc.m.Save(path); err != nil {
				t.Fatal(err)
			}
			back, err := LoadModel(path)
			if err != nil {
				t.Fatal(err)
			}
			if back.NumParams() != tc.m.NumParams() || !slices.Equal(back.InputShape(), tc.m.InputShape()) || back.Config() != tc.m.Config() {
				t.Fatalf("rebuilt model differs: %d params %v %+v", back.NumParams(), back.InputShape(), back.Config())
			}
			for i, p := range tc.m.params {
				if !slices.Equal(p.Value.Data().([]float32), back.params[i].Value.Data().([]float32)) {
					t.Errorf("%s differs after the round trip", p.Name)
				}
			}
			for i, st := range tc.m.stats {
				if st != nil && (!slices.Equal(st[0], back.stats[i][0]) || !slices.Equal(st[1], back.stats[i][1]) || tc.m.bnBatches[i] != back.bnBatches[i]) {
					t.Errorf("layer %d's running statistics differ", i)
				}
			}
			// Load into a fresh model of the same network.
			fresh, _ := LoadModel(path)
			randomizeWeights(fresh, 12)
			if err := fresh.Load(path); err != nil {
				t.Fatal(err)
			}
			for i, p := range tc.m.params {
				if !slices.Equal(p.Value.Data().([]float32), fresh.params[i].Value.Data().([]float32)) {
					t.Errorf("Load: %s differs", p.Name)
				}
			}
		})
	}
	// Another network refuses the file.
	path := filepath.Join(t.TempDir(), "preset.safetensors")
	if err := preset.Save(path); err != nil {
		t.Fatal(err)
	}
	if err := seq.Load(path); !errors.Is(err, ErrWrongNetwork) {
		t.Fatalf("loading the preset into another network: %v, want ErrWrongNetwork", err)
	}
}

// TestLoadPyTorchFile loads weights PyTorch saved (testdata/torch_small.*,
// made by scripts/torch/make_testdata.py) into the same network built here,
// and predicts what PyTorch predicted on the first 32 MNIST test images.
func TestLoadPyTorchFile(t *testing.T) {
	m, err := Sequential([]int{1, 28, 28}, 0, Conv2D(4, 3), BatchNorm(), ReLU(), MaxPool2D(2),
		Flatten(), Dense(16), BatchNorm(), ReLU(), Dense(10))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(filepath.Join("testdata", "torch_small.safetensors")); err != nil {
		t.Fatal(err)
	}
	var want struct {
		LogProbs [][]float64 `json:"log_probs"`
		Classes  []int       `json:"classes"`
	}
	b, err := os.ReadFile(filepath.Join("testdata", "torch_small.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	_, test, err := LoadMNIST("")
	if err != nil {
		t.Fatal(err)
	}
	x := test.Head(len(want.Classes)).Images
	probs, err := m.Probabilities(x)
	if err != nil {
		t.Fatal(err)
	}
	classes, err := m.Predict(x)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(classes, want.Classes) {
		t.Errorf("classes %v, PyTorch's %v", classes, want.Classes)
	}
	var worst float64
	defer func() { t.Logf("largest log-probability difference from PyTorch's: %.2g", worst) }()
	for i, row := range want.LogProbs {
		for k, lp := range row {
			worst = max(worst, math.Abs(math.Log(float64(probs[i*10+k]))-lp))
			// float32 on both sides, summed in different orders: the
			// largest difference seen is 2e-6; 1e-4 leaves room for other
			// kernels and is far below a wrong layout's error.
			if got := math.Log(float64(probs[i*10+k])); math.Abs(got-lp) > 1e-4 && math.Abs(math.Exp(got)-math.Exp(lp)) > 1e-6 {
				t.Fatalf("image %d, class %d: log-probability %.6f, PyTorch's %.6f", i, k, got, lp)
			}
		}
	}
}
