package vat

import (
	"context"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/org/vat/internal/toydata"
)

// searchTask is a small semi-supervised task for the ε search: 1,200
// samples of the 20-D blobs, labels labeled of them (split 2).
func searchTask(t *testing.T, labels int) (*Split, func() (*Model, error)) {
	t.Helper()
	x, l := toydata.Blobs(1200, 20, 3, 3, 1)
	pool, err := NewDataset(x, []int{20}, l, 3)
	if err != nil {
		t.Fatal(err)
	}
	split, err := SplitLabeled(pool, labels, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	return split, func() (*Model, error) { return Sequential([]int{20}, 1, Dense(32), ReLU(), Dense(3)) }
}

// fitSemi trains a fresh model with cfg on split and returns the trainer.
func fitSemi(t *testing.T, split *Split, newModel func() (*Model, error), cfg SemiSupervisedConfig) *SemiTrainer {
	t.Helper()
	m, err := newModel()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewSemiTrainer(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Fit(context.Background(), split.Labeled, split.Unlabeled, nil); err != nil {
		t.Fatal(err)
	}
	return tr
}

// The default search is SelectEps followed by a run at the chosen scale,
// bit for bit; a grid's choice reaches the run's ε; Off and too few labels
// to hold out keep the default scale without candidates; Config() after
// Fit starts a fresh run at the chosen ε.
func TestEpsSearch(t *testing.T) {
	split, newModel := searchTask(t, 30)
	base := SemiSupervisedConfig{Iterations: 200, LabeledBatch: 32, UnlabeledBatch: 64, Seed: 3}
	scale := DataScale(split.Labeled, split.Unlabeled)

	auto := base
	auto.VAT = &VATConfig{}
	got := fitSemi(t, split, newModel, auto)

	best, all, err := SelectEps(context.Background(), newModel, split.Labeled, split.Unlabeled, base, nil, 0.3, base.Seed)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("SelectEps tried %d scales, want 3", len(all))
	}
	manual := base
	manual.VAT = &VATConfig{EpsScale: best}
	want := fitSemi(t, split, newModel, manual)
	if !reflect.DeepEqual(got.EpsChoices(), all) {
		t.Errorf("EpsChoices %+v, SelectEps %+v", got.EpsChoices(), all)
	}
	if semiHash(got) != semiHash(want) {
		t.Errorf("the searched run differs from SelectEps (chose %v) and a run at that scale", best)
	}
	if e, w := got.Config().VAT.Eps, best*scale; math.Abs(e-w) > 1e-9*w {
		t.Errorf("Config().VAT.Eps = %v, want %v × the scale %v", e, best, scale)
	}
	// Config() after the search starts a fresh run at the chosen ε, without
	// searching again.
	m, _ := newModel()
	again, err := NewSemiTrainer(m, got.Config())
	if err != nil {
		t.Fatalf("NewSemiTrainer(Config()) after a search: %v", err)
	}
	if _, err := again.Fit(context.Background(), split.Labeled, split.Unlabeled, nil); err != nil || len(again.EpsChoices()) != 0 {
		t.Errorf("a run from Config(): %v, %d candidates; want none", err, len(again.EpsChoices()))
	}

	// A grid without the default: its smallest scale is the anchor, here
	// the only candidate, and its ε is the run's.
	one := auto
	one.EpsSearch = EpsSearch{Grid: []float64{0.3}, Iterations: 50}
	tr := fitSemi(t, split, newModel, one)
	if c := tr.EpsChoices(); len(c) != 1 || !c[0].Chosen || c[0].EpsScale != 0.3 {
		t.Errorf("grid {0.3}: candidates %+v, want 0.3 chosen", c)
	}
	if e, w := tr.Config().VAT.Eps, 0.3*scale; math.Abs(e-w) > 1e-9*w {
		t.Errorf("grid {0.3}: ε %v, want %v", e, w)
	}

	// Off, and too few labels to hold out five: the default scale, no
	// candidates, the same run as EpsScale 0.05.
	off := auto
	off.EpsSearch = EpsSearch{Off: true}
	fixed := base
	fixed.VAT = &VATConfig{EpsScale: 0.05}
	few, fewModel := searchTask(t, 6) // two per class: one of each held out
	for _, tc := range []struct {
		name  string
		split *Split
		cfg   SemiSupervisedConfig
	}{{"Off", split, off}, {"6 labels", few, auto}} {
		tr := fitSemi(t, tc.split, fewModel, tc.cfg)
		ref := fitSemi(t, tc.split, fewModel, fixed)
		if len(tr.EpsChoices()) != 0 || semiHash(tr) != semiHash(ref) {
			t.Errorf("%s: %d candidates, same run as EpsScale 0.05: %v; want none and true", tc.name, len(tr.EpsChoices()), semiHash(tr) == semiHash(ref))
		}
	}
}

// Every EpsSearch setting out of range, or set where no search can run, is
// refused by name.
func TestEpsSearchRejects(t *testing.T) {
	m, _ := Sequential([]int{20}, 1, Dense(3))
	for _, tc := range []struct {
		vat  *VATConfig
		e    EpsSearch
		want string
	}{
		{nil, EpsSearch{Off: true}, "without VAT"},
		{&VATConfig{Eps: 1}, EpsSearch{Holdout: 0.2}, "fixes ε"},
		{&VATConfig{EpsScale: 0.1}, EpsSearch{Grid: []float64{0.1}}, "fixes ε"},
		{&VATConfig{}, EpsSearch{Off: true, Iterations: 5}, "Off"},
		{&VATConfig{}, EpsSearch{Grid: []float64{}}, "empty grid"},
		{&VATConfig{}, EpsSearch{Grid: []float64{0.1, 11}}, "Grid[1]"},
		{&VATConfig{}, EpsSearch{Grid: []float64{math.NaN()}}, "Grid[0]"},
		{&VATConfig{}, EpsSearch{Holdout: 1}, "Holdout"},
		{&VATConfig{}, EpsSearch{Holdout: -0.1}, "Holdout"},
		{&VATConfig{}, EpsSearch{Iterations: -1}, "EpsSearch.Iterations"},
	} {
		_, err := NewSemiTrainer(m, SemiSupervisedConfig{VAT: tc.vat, EpsSearch: tc.e})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "EpsSearch") {
			t.Errorf("VAT %+v, EpsSearch %+v: %v; want an error naming EpsSearch and %q", tc.vat, tc.e, err, tc.want)
		}
	}
}

// The search's candidates survive a checkpoint; a checkpoint written
// before the first Fit keeps the search to run, and the resumed run equals
// an uninterrupted one; ResumeSemi refuses a new EpsSearch and candidates
// that cannot be.
func TestEpsSearchCheckpoint(t *testing.T) {
	split, newModel := searchTask(t, 30)
	cfg := SemiSupervisedConfig{Iterations: 60, LabeledBatch: 16, UnlabeledBatch: 32, Seed: 4, VAT: &VATConfig{}, EpsSearch: EpsSearch{Iterations: 40}}
	whole := fitSemi(t, split, newModel, cfg)
	dir := t.TempDir()

	after := filepath.Join(dir, "after.ckpt")
	if err := whole.Checkpoint(after); err != nil {
		t.Fatal(err)
	}
	r, err := ResumeSemi(after, SemiSupervisedConfig{Iterations: 80})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.EpsChoices(), whole.EpsChoices()) || len(r.EpsChoices()) != 3 {
		t.Errorf("resumed candidates %+v, saved %+v", r.EpsChoices(), whole.EpsChoices())
	}

	m, _ := newModel()
	fresh, err := NewSemiTrainer(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	before := filepath.Join(dir, "before.ckpt")
	if err := fresh.Checkpoint(before); err != nil {
		t.Fatal(err)
	}
	r, err = ResumeSemi(before, SemiSupervisedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Fit(context.Background(), split.Labeled, split.Unlabeled, nil); err != nil {
		t.Fatal(err)
	}
	if semiHash(r) != semiHash(whole) || !reflect.DeepEqual(r.EpsChoices(), whole.EpsChoices()) {
		t.Errorf("a run resumed before its search differs from the uninterrupted one")
	}

	if _, err := ResumeSemi(after, SemiSupervisedConfig{EpsSearch: EpsSearch{Off: true}}); err == nil || !strings.Contains(err.Error(), "EpsSearch") {
		t.Errorf("ResumeSemi with EpsSearch set: %v, want an error naming it", err)
	}
	for _, tc := range []struct {
		name string
		edit func(c []any)
	}{
		{"two chosen", func(c []any) { c[0].(map[string]any)["chosen"], c[1].(map[string]any)["chosen"] = true, true }},
		{"none chosen", func(c []any) {
			for _, x := range c {
				delete(x.(map[string]any), "chosen")
			}
		}},
		{"negative loss", func(c []any) { c[2].(map[string]any)["loss"] = -1 }},
		{"scale out of range", func(c []any) { c[1].(map[string]any)["eps_scale"] = 20 }},
		{"accuracy above 1", func(c []any) { c[0].(map[string]any)["accuracy"] = 1.5 }},
	} {
		bad := rewriteCheckpoint(t, after, func(h map[string]any) { tc.edit(h["semi"].(map[string]any)["eps_choices"].([]any)) })
		if _, err := ResumeSemi(bad, SemiSupervisedConfig{}); err == nil || !strings.Contains(err.Error(), "ε candidate") {
			t.Errorf("%s: %v, want an error about the ε candidates", tc.name, err)
		}
	}
}
