package vat

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/fnv"
	"maps"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/backend/gputest"
	"github.com/org/vat/internal/safetensors"
)

// syntheticData returns n random 1×10×10 images with labels of 5 classes.
func syntheticData(t testing.TB, n int, seed uint64) *Dataset {
	r := rand.New(rand.NewPCG(seed, 1))
	x := make([]float32, n*100)
	for i := range x {
		x[i] = r.Float32()
	}
	labels := make([]int, n)
	for i := range labels {
		labels[i] = r.IntN(5)
	}
	d, err := NewDataset(x, []int{1, 10, 10}, labels, 5)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// resumeNet has every random stream and every kind of state: dropout
// (two ops), batch normalization's running averages, VAT's noise.
func resumeNet(t testing.TB) *Model {
	m, err := Sequential([]int{1, 10, 10}, 4, Conv2D(3, 3), BatchNorm(), ReLU(), MaxPool2D(2), Dropout(0.3),
		Flatten(), Dense(12), ReLU(), Dropout(0.5), Dense(5))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// stateHash fingerprints everything a run's end depends on: weights,
// running statistics and the optimizer's state.
func stateHash(tr *Trainer) uint64 { return runHash(tr.Model(), &tr.loop) }

// runHash fingerprints a model's weights, running statistics and their
// update counts, and a training core's optimizer state.
func runHash(m *Model, l *loop) uint64 {
	h := fnv.New64a()
	put := func(v []float32) {
		for _, x := range v {
			binary.Write(h, binary.LittleEndian, math.Float32bits(x))
		}
	}
	for _, p := range m.Params() {
		put(p.Value.Data().([]float32))
	}
	for _, st := range m.stats {
		if st != nil {
			put(st[0])
			put(st[1])
		}
	}
	binary.Write(h, binary.LittleEndian, m.bnBatches)
	for _, b := range stateBuffers(l.state) {
		put(b)
	}
	return h.Sum64()
}

// stateBuffers lists an optimizer state's buffers (none for nil).
func stateBuffers(st optimizerState) [][]float32 {
	if st == nil {
		return nil
	}
	var out [][]float32
	for _, b := range st.buffers() {
		out = append(out, b...)
	}
	return out
}

func TestResumeIsBitIdentical(t *testing.T) {
	train, test := syntheticData(t, 150, 1), syntheticData(t, 40, 2)
	cfg := TrainConfig{Epochs: 3, BatchSize: 32, Seed: 9, VAT: &VATConfig{Eps: 2}} // 5 steps per epoch, the last of 22
	t.Run("Adadelta", func(t *testing.T) { testResume(t, cfg, train, test) })
	cfg.Optimizer, cfg.Schedule = Adam{LR: 0.003}, WarmUp{Steps: 4, Then: LinearDecay{Start: 0.5}}
	t.Run("Adam", func(t *testing.T) { testResume(t, cfg, train, test) })
	cfg.Optimizer, cfg.Schedule = SGD{LR: 0.05, Momentum: 0.9, WeightDecay: 1e-3}, StepDecay{Every: 3, Factor: 0.7}
	t.Run("SGD", func(t *testing.T) { testResume(t, cfg, train, test) })
}

func testResume(t *testing.T, cfg TrainConfig, train, test *Dataset) {
	whole, err := NewTrainer(resumeNet(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want, err := whole.Fit(context.Background(), train, test)
	if err != nil {
		t.Fatal(err)
	}
	wantHash := stateHash(whole)
	for _, stopAfter := range []int{1, 4, 5, 7, 10, 14} { // mid-epoch, before the remainder batch, at epoch ends, ...
		t.Run("", func(t *testing.T) {
			res := stopAndResume(t, cfg, stopAfter, train, test)
			if got := stateHash(res); got != wantHash {
				t.Errorf("stopped after %d steps and resumed: state hash %x, want %x", stopAfter, got, wantHash)
			}
			got := res.History()
			if len(got) != len(want) {
				t.Fatalf("%d epochs of history, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i].TrainLoss != want[i].TrainLoss || got[i].TrainLDS != want[i].TrainLDS || got[i].TestAccuracy != want[i].TestAccuracy {
					t.Errorf("epoch %d: %+v, want %+v", i+1, got[i], want[i])
				}
			}
		})
	}
}

// stopAndResume trains resumeNet with cfg, stops it after stopAfter steps,
// saves a checkpoint, resumes from it and trains to the end: the resumed
// trainer.
func stopAndResume(t *testing.T, cfg TrainConfig, stopAfter int, train, test *Dataset) *Trainer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	steps := 0
	cfg.OnStep = func(StepInfo) {
		if steps++; steps == stopAfter {
			cancel()
		}
	}
	tr, err := NewTrainer(resumeNet(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Fit(ctx, train, test); !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped run: %v", err)
	}
	path := filepath.Join(t.TempDir(), "run.ckpt")
	if err := tr.Checkpoint(path); err != nil {
		t.Fatal(err)
	}
	res, err := Resume(path, TrainConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.Fit(context.Background(), train, test); err != nil {
		t.Fatal(err)
	}
	return res
}

func TestResumeRejects(t *testing.T) {
	train := syntheticData(t, 70, 1)
	tr, err := NewTrainer(resumeNet(t), TrainConfig{Epochs: 2, BatchSize: 32, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tr.cfg.OnStep = func(StepInfo) { cancel() }
	tr.Fit(ctx, train, nil)
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "run.ckpt")
	if err := tr.Checkpoint(ckpt); err != nil {
		t.Fatal(err)
	}
	weights := filepath.Join(dir, "w.safetensors")
	tr.Model().Save(weights)
	for _, tc := range []struct {
		name string
		path string
		cfg  TrainConfig
		want string
	}{
		{"batch size", ckpt, TrainConfig{BatchSize: 7}, "TrainConfig.BatchSize"},
		{"seed", ckpt, TrainConfig{Seed: 7}, "TrainConfig.Seed"},
		{"vat", ckpt, TrainConfig{VAT: &VATConfig{}}, "TrainConfig.VAT"},
		{"optimizer", ckpt, TrainConfig{Optimizer: Adadelta{LR: 2}}, "TrainConfig.Optimizer"},
		{"fewer epochs", ckpt, TrainConfig{Epochs: -1}, "TrainConfig.Epochs"},
		{"weights file", weights, TrainConfig{}, "not a checkpoint"},
		{"missing", filepath.Join(dir, "none"), TrainConfig{}, "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Resume(tc.path, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	// Broken checkpoint entries: each an error naming the file.
	f, err := safetensors.ReadFile(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(map[string]any)
		want string
	}{
		{"unknown field", func(c map[string]any) { c["extra"] = 1 }, "header entry"},
		{"history too short", func(c map[string]any) { c["epoch"] = 1 }, "epochs of history"},
		{"negative step", func(c map[string]any) { c["step"] = -1 }, "step -1"},
		{"no shuffling state", func(c map[string]any) { c["shuffle"] = "AAAA" }, "shuffling state"},
		{"bad batch size", func(c map[string]any) { c["config"].(map[string]any)["batch_size"] = 100000 }, "BatchSize"},
		{"bad VAT", func(c map[string]any) { c["config"].(map[string]any)["vat"] = map[string]any{"Eps": -1} }, "Eps"},
		{"finished", func(c map[string]any) { c["config"].(map[string]any)["epochs"] = 0 }, "zero or negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c map[string]any
			if err := json.Unmarshal([]byte(f.Metadata[metaCheckpoint]), &c); err != nil {
				t.Fatal(err)
			}
			tc.edit(c)
			b, _ := json.Marshal(c)
			meta := maps.Clone(f.Metadata)
			meta[metaCheckpoint] = string(b)
			path := filepath.Join(t.TempDir(), "broken.ckpt")
			if err := safetensors.WriteFile(path, &safetensors.File{Metadata: meta, Tensors: f.Tensors}); err != nil {
				t.Fatal(err)
			}
			_, err := Resume(path, TrainConfig{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Resume: %v, want one line naming the file and containing %q", err, tc.want)
			}
		})
	}

	// Another training set for the unfinished epoch.
	res, err := Resume(ckpt, TrainConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.Fit(context.Background(), syntheticData(t, 70, 5), nil); err == nil || !strings.Contains(err.Error(), "same set") {
		t.Fatalf("continuing on other data: %v", err)
	}
	// A checkpoint's weights load as weights.
	if _, err := LoadModel(ckpt); err != nil {
		t.Fatalf("LoadModel(checkpoint): %v", err)
	}
}

// TestResumeOlderCheckpoint: a checkpoint written before the optimizer
// became a setting (Adadelta's settings in its config, no optimizer,
// schedule or kind) resumes as the Adadelta run it was, bit for bit.
func TestResumeOlderCheckpoint(t *testing.T) {
	train := syntheticData(t, 150, 1)
	cfg := TrainConfig{Epochs: 2, BatchSize: 32, Seed: 3, VAT: &VATConfig{Eps: 2}}
	whole, err := NewTrainer(resumeNet(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := whole.Fit(context.Background(), train, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	steps := 0
	cfg.OnStep = func(StepInfo) {
		if steps++; steps == 3 {
			cancel()
		}
	}
	tr, err := NewTrainer(resumeNet(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Fit(ctx, train, nil); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "new.ckpt")
	if err := tr.Checkpoint(path); err != nil {
		t.Fatal(err)
	}
	old := rewriteCheckpoint(t, path, func(c map[string]any) {
		delete(c, "kind")
		delete(c, "optimizer")
		delete(c, "schedule")
		conf := c["config"].(map[string]any)
		conf["adadelta_lr"], conf["adadelta_rho"], conf["adadelta_epsilon"] = 1.0, 0.95, 1e-7
	})
	res, err := Resume(old, TrainConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res.Config().Optimizer.(Adadelta); !ok {
		t.Fatalf("an older checkpoint resumed with %v, want Adadelta", res.Config().Optimizer)
	}
	if _, err := res.Fit(context.Background(), train, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := stateHash(res), stateHash(whole); got != want {
		t.Errorf("resumed from an older checkpoint: state hash %x, want %x", got, want)
	}
}

// rewriteCheckpoint writes a copy of the checkpoint at path, in a temporary
// folder, whose header edit has changed (as a file of an older version
// would have it), and returns the copy's path.
func rewriteCheckpoint(t *testing.T, path string, edit func(header map[string]any)) string {
	t.Helper()
	f, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	dec := json.NewDecoder(strings.NewReader(f.Metadata[metaCheckpoint]))
	dec.UseNumber() // the data's 64-bit hash survives
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	edit(c)
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	meta := maps.Clone(f.Metadata)
	meta[metaCheckpoint] = string(b)
	old := filepath.Join(t.TempDir(), "old.ckpt")
	if err := safetensors.WriteFile(old, &safetensors.File{Metadata: meta, Tensors: f.Tensors}); err != nil {
		t.Fatal(err)
	}
	return old
}

// A run on a device resumes bit-identically too: the device's random
// streams (masks and noise drawn there) continue from the checkpoint's
// positions, and the weights, running averages and optimizer state it
// saves are the device's, copied back.
func TestGPUResumeIsBitIdentical(t *testing.T) {
	train, test := syntheticData(t, 150, 1), syntheticData(t, 40, 2)
	cfg := TrainConfig{Epochs: 2, BatchSize: 32, Seed: 9, VAT: &VATConfig{Eps: 2}}
	hash := func(tr *Trainer) uint64 {
		m := tr.Model()
		var hs [][]float32
		for _, p := range m.Params() {
			hs = append(hs, p.Value.Data().([]float32))
		}
		for _, st := range m.stats {
			if st != nil {
				hs = append(hs, st[0], st[1])
			}
		}
		hs = append(hs, stateBuffers(tr.state)...)
		if err := backend.SyncToHost(hs...); err != nil {
			t.Fatal(err)
		}
		return stateHash(tr)
	}
	for _, dev := range gputest.KernelDevices(t) {
		gputest.With(t, dev.Dev)
		whole, err := NewTrainer(resumeNet(t), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := whole.Fit(context.Background(), train, test); err != nil {
			t.Fatal(err)
		}
		want := hash(whole)
		for _, stopAfter := range []int{3, 5} { // mid-epoch, at the epoch's end
			res := stopAndResume(t, cfg, stopAfter, train, test)
			if got := hash(res); got != want {
				t.Errorf("%s: stopped after %d steps and resumed: state hash %x, want %x", dev.Name, stopAfter, got, want)
			}
		}
		backend.Use(nil)
	}
}
