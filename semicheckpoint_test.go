package vat

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/org/vat/internal/safetensors"
)

// semiNet has every kind of state a semi-supervised run keeps: batch
// normalization's running averages, dropout masks and Gaussian noise.
func semiNet(t testing.TB) *Model {
	m, err := Sequential([]int{1, 10, 10}, 5, Flatten(), Dense(24), BatchNorm(), ReLU(), GaussianNoise(0.3), Dense(16), ReLU(), Dropout(0.2), Dense(5))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// semiHash fingerprints a semi-supervised run's state (see runHash).
func semiHash(t *SemiTrainer) uint64 { return runHash(t.Model(), &t.loop) }

// TestSemiResumeIsBitIdentical stops a semi-supervised run after k steps,
// checkpoints it, resumes it in a new trainer and finishes it: the weights,
// statistics, optimizer state and evaluations equal an uninterrupted run's.
// A cancelled Fit continued on the same trainer gives the same too.
func TestSemiResumeIsBitIdentical(t *testing.T) {
	pool := learnable(t, 120, 3)
	split, err := SplitLabeled(pool, 20, 5, 4)
	if err != nil {
		t.Fatal(err)
	}
	test := learnable(t, 40, 4)
	for _, tc := range []struct {
		name string
		cfg  SemiSupervisedConfig
	}{
		{"vat+entmin, Adam", SemiSupervisedConfig{VAT: &VATConfig{Eps: 0.5}, VATOnLabeled: true, EntMin: 0.5, WarmUp: 0.3, EntMinWarmUp: 0.5}},
		{"exact probe, SGD", SemiSupervisedConfig{VAT: &VATConfig{Eps: 0.5, Probe: Exact}, Optimizer: SGD{LR: 0.05, Momentum: 0.9}, Schedule: WarmUp{Steps: 3, Then: StepDecay{Every: 5, Factor: 0.8}}}},
		{"supervised, running statistics", SemiSupervisedConfig{BNStats: RunningBNStats}},
		{"vat+balance", SemiSupervisedConfig{VAT: &VATConfig{Eps: 0.5}, Balance: 0.5}},
		{"vat+align", SemiSupervisedConfig{VAT: &VATConfig{Eps: 0.5}, Align: true}},
		// Stops at the third report (12): a resumed run must remember the
		// reports before its checkpoint to stop there too.
		{"early stopping", SemiSupervisedConfig{VAT: &VATConfig{Eps: 0.5}, EarlyStop: &EarlyStopping{Metric: MetricTrainLoss, Patience: 2, MinDelta: 1e9}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Iterations, cfg.LabeledBatch, cfg.UnlabeledBatch, cfg.EvalEvery, cfg.Seed = 14, 8, 24, 4, 6 // the unlabeled pool of 100 wraps mid-batch
			if tc.name == "exact probe, SGD" {                                                              // the exact probe has no tangent for dropout
				cfg.VAT.Probe = FiniteDifference
			}
			whole, err := NewSemiTrainer(semiNet(t), cfg)
			if err != nil {
				t.Fatal(err)
			}
			want, err := whole.Fit(context.Background(), split.Labeled, split.Unlabeled, test)
			if err != nil {
				t.Fatal(err)
			}
			wantHash := semiHash(whole)
			for _, r := range want {
				if r.PopulationStats != (cfg.BNStats == PopulationBNStats) { // semiNet has batch norm
					t.Fatalf("report at %d: population statistics %v, configured %v", r.Iteration, r.PopulationStats, cfg.BNStats)
				}
			}
			for _, stopAfter := range []int{1, 4, 5, 9, 13} {
				if stopAfter >= whole.Iteration() { // an early stop came first
					continue
				}
				ctx, cancel := context.WithCancel(context.Background())
				c := cfg
				steps := 0
				c.OnStep = func(SemiStep) {
					if steps++; steps == stopAfter {
						cancel()
					}
				}
				tr, err := NewSemiTrainer(semiNet(t), c)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tr.Fit(ctx, split.Labeled, split.Unlabeled, test); !errors.Is(err, context.Canceled) {
					t.Fatalf("stopped run: %v", err)
				}
				cancel()
				path := filepath.Join(t.TempDir(), "semi.ckpt")
				if err := tr.Checkpoint(path); err != nil {
					t.Fatal(err)
				}
				res, err := ResumeSemi(path, SemiSupervisedConfig{})
				if err != nil {
					t.Fatal(err)
				}
				if res.Iteration() != stopAfter {
					t.Fatalf("resumed at iteration %d, want %d", res.Iteration(), stopAfter)
				}
				if _, err := res.Fit(context.Background(), split.Labeled, split.Unlabeled, test); err != nil {
					t.Fatal(err)
				}
				if got := semiHash(res); got != wantHash {
					t.Errorf("stopped after %d steps, resumed from a checkpoint: state hash %x, want %x", stopAfter, got, wantHash)
				}
				compareEvals(t, res.History(), want)
				// The stopped trainer itself continues where it stopped.
				if _, err := tr.Fit(context.Background(), split.Labeled, split.Unlabeled, test); err != nil {
					t.Fatal(err)
				}
				if got := semiHash(tr); got != wantHash {
					t.Errorf("stopped after %d steps, Fit again: state hash %x, want %x", stopAfter, got, wantHash)
				}
				compareEvals(t, tr.History(), want)
			}
			if _, err := whole.Fit(context.Background(), split.Labeled, split.Unlabeled, test); err == nil || !strings.Contains(err.Error(), "finished") {
				t.Errorf("Fit on a finished run: %v, want an error saying it has finished", err)
			}
		})
	}
}

func compareEvals(t *testing.T, got, want []SemiEval) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d evaluations, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Iteration != w.Iteration || g.TrainLoss != w.TrainLoss || g.TrainLDS != w.TrainLDS || g.TestAccuracy != w.TestAccuracy || g.TestLoss != w.TestLoss {
			t.Errorf("evaluation %d: %+v, want %+v", i, g, w)
		}
	}
}

// TestResumeSemiRejects: wrong kinds, changed settings, other data and
// broken entries are refused with one line naming the file.
func TestResumeSemiRejects(t *testing.T) {
	pool := learnable(t, 120, 3)
	split, _ := SplitLabeled(pool, 20, 5, 4)
	stopped := func(cfg SemiSupervisedConfig, n int) *SemiTrainer {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		steps := 0
		cfg.OnStep = func(SemiStep) {
			if steps++; steps == n {
				cancel()
			}
		}
		tr, err := NewSemiTrainer(semiNet(t), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Fit(ctx, split.Labeled, split.Unlabeled, nil); !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
		return tr
	}
	cfg := SemiSupervisedConfig{Iterations: 10, LabeledBatch: 8, UnlabeledBatch: 24, VAT: &VATConfig{Eps: 0.5}, Seed: 2}
	tr := stopped(cfg, 3)
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "semi.ckpt")
	if err := tr.Checkpoint(ckpt); err != nil {
		t.Fatal(err)
	}
	sup, err := NewTrainer(semiNet(t), TrainConfig{Epochs: 1, BatchSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	supCkpt := filepath.Join(dir, "sup.ckpt")
	if err := sup.Checkpoint(supCkpt); err != nil {
		t.Fatal(err)
	}
	oneLine := func(err error, path, want string) bool {
		return err != nil && strings.Contains(err.Error(), want) && strings.Contains(err.Error(), path) && !strings.Contains(err.Error(), "\n")
	}
	if _, err := ResumeSemi(supCkpt, SemiSupervisedConfig{}); !oneLine(err, supCkpt, "resume it with Resume") {
		t.Errorf("ResumeSemi(supervised checkpoint): %v", err)
	}
	if _, err := Resume(ckpt, TrainConfig{}); !oneLine(err, ckpt, "resume it with ResumeSemi") {
		t.Errorf("Resume(semi-supervised checkpoint): %v", err)
	}
	for _, c := range []SemiSupervisedConfig{{Seed: 1}, {LabeledBatch: 3}, {VAT: &VATConfig{}}, {Optimizer: SGD{}}, {Schedule: Constant{}}, {Iterations: -1}, {EvalEvery: 2}, {BNStats: RunningBNStats}} {
		if _, err := ResumeSemi(ckpt, c); err == nil {
			t.Errorf("ResumeSemi with %+v accepted", c)
		}
	}
	if _, err := ResumeSemi(ckpt, SemiSupervisedConfig{Iterations: 2}); err == nil || !strings.Contains(err.Error(), "want more") {
		t.Errorf("ResumeSemi with fewer iterations than done: %v", err)
	}
	res, err := ResumeSemi(ckpt, SemiSupervisedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.Fit(context.Background(), split.Labeled, pool.Head(50), nil); err == nil || !strings.Contains(err.Error(), "same sets") {
		t.Errorf("continuing on other unlabeled data: %v", err)
	}
	// The refused Fit left the checkpoint's batch orders to the next one:
	// continued on the right data, the run ends as one never stopped.
	whole, err := NewSemiTrainer(semiNet(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := whole.Fit(context.Background(), split.Labeled, split.Unlabeled, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := res.Fit(context.Background(), split.Labeled, split.Unlabeled, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := semiHash(res), semiHash(whole); got != want {
		t.Errorf("resumed after a refused Fit: state hash %x, want %x", got, want)
	}

	f, err := safetensors.ReadFile(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(c map[string]any)
		order []int64 // replaces the labeled order
		want  string
	}{
		{"not JSON of a checkpoint", func(c map[string]any) { c["extra"] = 1 }, nil, "header entry"},
		{"unknown optimizer", func(c map[string]any) { c["optimizer"].(map[string]any)["name"] = "rmsprop" }, nil, "rmsprop"},
		{"bad schedule", func(c map[string]any) { c["schedule"].(map[string]any)["start"] = 7 }, nil, "LinearDecay.Start"},
		{"iteration before sums", func(c map[string]any) { c["semi"].(map[string]any)["sum_steps"] = 9 }, nil, "steps since the last evaluation"},
		{"order not a permutation", nil, []int64{0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18}, "permutation"},
		{"order of another size", nil, []int64{0, 1}, "batch order"},
		{"align_mean without align", func(c map[string]any) { c["semi"].(map[string]any)["align_mean"] = []float64{0.2, 0.2, 0.2, 0.2, 0.2} }, nil, "align_mean without align"},
		{"align_mean of another width", func(c map[string]any) {
			c["semi"].(map[string]any)["align"], c["semi"].(map[string]any)["align_mean"] = true, []float64{0.5, 0.5}
		}, nil, "align_mean has 2 classes"},
		{"align_mean not a probability", func(c map[string]any) {
			c["semi"].(map[string]any)["align"], c["semi"].(map[string]any)["align_mean"] = true, []float64{0.5, 1.5, 0, 0, 0}
		}, nil, "want a probability"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c map[string]any
			if err := json.Unmarshal([]byte(f.Metadata[metaCheckpoint]), &c); err != nil {
				t.Fatal(err)
			}
			if tc.edit != nil {
				tc.edit(c)
			}
			b, _ := json.Marshal(c)
			meta := maps.Clone(f.Metadata)
			meta[metaCheckpoint] = string(b)
			tensors := append([]safetensors.Tensor(nil), f.Tensors...)
			if tc.order != nil {
				for i, x := range tensors {
					if x.Name == labeledOrder {
						tensors[i] = safetensors.FromInt64(labeledOrder, []int{len(tc.order)}, tc.order)
					}
				}
			}
			path := filepath.Join(t.TempDir(), "broken.ckpt")
			if err := safetensors.WriteFile(path, &safetensors.File{Metadata: meta, Tensors: tensors}); err != nil {
				t.Fatal(err)
			}
			_, err := ResumeSemi(path, SemiSupervisedConfig{})
			if !oneLine(err, path, tc.want) {
				t.Fatalf("ResumeSemi: %v, want one line naming the file and containing %q", err, tc.want)
			}
		})
	}
}

// TestResumeSemiOlderCheckpoint: a checkpoint written before BNStats
// (version 0.5, whose default was the running averages and whose
// population_stats said otherwise) resumes with the statistics it was
// written with, not with today's default.
func TestResumeSemiOlderCheckpoint(t *testing.T) {
	pool := learnable(t, 120, 3)
	split, err := SplitLabeled(pool, 20, 5, 4)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewSemiTrainer(semiNet(t), SemiSupervisedConfig{Iterations: 3, LabeledBatch: 8, UnlabeledBatch: 24, VAT: &VATConfig{Eps: 0.5}, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Fit(context.Background(), split.Labeled, split.Unlabeled, nil); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "new.ckpt")
	if err := tr.Checkpoint(path); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		popStats any // the old field: absent (nil) or true
		want     BNStats
	}{{nil, RunningBNStats}, {true, PopulationBNStats}} {
		old := rewriteCheckpoint(t, path, func(c map[string]any) {
			semi := c["semi"].(map[string]any)
			if semi["bn_stats"] != "population" {
				t.Fatalf("a new checkpoint records bn_stats %v, want population", semi["bn_stats"])
			}
			delete(semi, "bn_stats")
			if tc.popStats != nil {
				semi["population_stats"] = tc.popStats
			}
		})
		res, err := ResumeSemi(old, SemiSupervisedConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Config().BNStats; got != tc.want {
			t.Errorf("population_stats %v: resumed with %v, want %v", tc.popStats, got, tc.want)
		}
	}
}
