package vat

import (
	"context"
	"testing"
)

// TestRecipes: each published recipe builds its network and trains a few
// steps with its configuration, as examples/semisup -preset runs it.
func TestRecipes(t *testing.T) {
	train, test := loadMNIST(t)
	split, err := SplitLabeled(train.Head(1000), 100, Classes, 1)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, r := range Recipes() {
		names[r.Name] = true
		m, err := r.Model(1)
		if err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		cfg := r.Config
		if cfg.Iterations != 50000 {
			t.Errorf("%s: %d iterations, want the source's 50,000", r.Name, cfg.Iterations)
		}
		cfg.Iterations, cfg.LabeledBatch, cfg.UnlabeledBatch, cfg.EvalEvery = 3, 20, 40, 3
		tr, err := NewSemiTrainer(m, cfg)
		if err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		evals, err := tr.Fit(context.Background(), split.Labeled, split.Unlabeled, test.Head(100))
		if err != nil || len(evals) != 1 || !evals[0].PopulationStats {
			t.Fatalf("%s: %v, %+v", r.Name, err, evals)
		}
	}
	if !names["official-2015"] || !names["tpami-2018"] {
		t.Errorf("recipes %v", names)
	}
}
