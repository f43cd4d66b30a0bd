package vat

import (
	"context"
	"fmt"
	"math"
	"slices"
)

// EpsSearch configures how SemiTrainer chooses VAT's ε when the VATConfig
// sets neither Eps nor EpsScale: at the start of the first Fit it runs
// SelectEps' search on the labeled samples it is given (hold out a fraction
// of each class, train one candidate model per EpsScale on the rest and the
// unlabeled samples, keep the default 0.05 unless another scale is
// significantly better on the held-out cross-entropy), then trains the
// run's model on all the labels with the chosen scale.
//
// The zero value searches {0.05, 0.2, 0.7}, holding out 30 % of each class,
// with min(Iterations, 1000) updates per candidate: three short trainings
// before the run (30 % more updates on a 10,000-update run). With fewer
// than five held-out samples (four labels in each of two classes hold out
// two) no scale can pass the test, so no candidate is trained and the
// default is kept.
// The search is deterministic: its split and its candidates derive from
// the run's Seed and the model's weights. SemiTrainer.EpsChoices reports
// the candidates; Config().VAT the ε chosen.
//
// Why a search and not one scale: ε is a length in the input's units, and
// the best fraction of the data's scale still depends on how far apart the
// classes lie. 0.05 of the scale beats supervised training on the moons,
// the blobs and MNIST with 1,000 labels, but loses to it on MNIST with 100
// labels, where the search picks 0.7 on every split measured and beats it
// by 16-18 points (README, docs/defaults/select.md).
type EpsSearch struct {
	// Off keeps the default EpsScale, 0.05, without a search.
	Off bool
	// Grid is the EpsScale candidates, each in (0, 10]; nil means
	// {0.05, 0.2, 0.7}. The default 0.05 (or the smallest, if Grid lacks
	// it) is the one kept unless another is significantly better.
	Grid []float64
	// Holdout is the fraction of each class of the labeled samples held
	// out to score the candidates, in (0, 1); 0 means 0.3.
	Holdout float64
	// Iterations is each candidate's number of updates, >= 0; 0 means
	// min(SemiSupervisedConfig.Iterations, 1000).
	Iterations int
}

// maxSearchIterations bounds the default updates per candidate: 1,000 was
// enough to rank the scales on MNIST with 100 labels (the ranking at
// 1,000 held over the 3,000-update runs: docs/defaults/select.md).
const maxSearchIterations = 1000

// isZero reports whether e is the zero EpsSearch.
func (e EpsSearch) isZero() bool {
	return !e.Off && e.Grid == nil && e.Holdout == 0 && e.Iterations == 0
}

// validate checks e as SemiSupervisedConfig.EpsSearch of a run with vat
// (nil: no VAT term) and iterations updates, and fills in its defaults.
func (e EpsSearch) validate(vat *VATConfig, iterations int) (EpsSearch, error) {
	const name = "SemiSupervisedConfig.EpsSearch"
	switch {
	case e.isZero():
	case vat == nil:
		return e, fmt.Errorf("vat: %s is set without VAT", name)
	case !leavesEps(vat):
		return e, fmt.Errorf("vat: %s is set, and VATConfig fixes ε (Eps %v, EpsScale %v): want one or the other", name, vat.Eps, vat.EpsScale)
	case e.Off && (e.Grid != nil || e.Holdout != 0 || e.Iterations != 0):
		return e, fmt.Errorf("vat: %s.Off is set with other search settings: want one or the other", name)
	}
	if e.Grid != nil {
		if err := checkGrid(e.Grid, name+".Grid"); err != nil {
			return e, err
		}
		e.Grid = slices.Clone(e.Grid)
	}
	switch {
	case !(e.Holdout >= 0 && e.Holdout < 1):
		return e, fmt.Errorf("vat: %s.Holdout = %v: want a fraction in (0, 1) (0 means %g)", name, e.Holdout, defaultHoldout)
	case e.Iterations < 0:
		return e, fmt.Errorf("vat: %s.Iterations = %d: want >= 0 (0 means min(Iterations, %d))", name, e.Iterations, maxSearchIterations)
	}
	if e.Off || !leavesEps(vat) {
		return e, nil // no search: nothing to fill in
	}
	if e.Grid == nil {
		e.Grid = slices.Clone(defaultEpsGrid)
	}
	if e.Holdout == 0 {
		e.Holdout = defaultHoldout
	}
	if e.Iterations == 0 {
		e.Iterations = min(iterations, maxSearchIterations)
	}
	return e, nil
}

// leavesEps reports whether v is a VAT term whose ε is left to the trainer
// (neither Eps nor EpsScale set): the case EpsSearch applies to.
func leavesEps(v *VATConfig) bool { return v != nil && v.Eps == 0 && v.EpsScale == 0 }

// searches reports whether the first Fit chooses ε by the search.
func (t *SemiTrainer) searches() bool { return leavesEps(t.vat) && !t.cfg.EpsSearch.Off }

// searchEps runs the search of EpsSearch on labeled and unlabeled with
// candidates cloned from the trainer's model, records the candidates and
// sets the chosen EpsScale.
func (t *SemiTrainer) searchEps(ctx context.Context, labeled, unlabeled *Dataset) error {
	e := t.cfg.EpsSearch
	cfg := t.cfg
	cfg.Iterations, cfg.EvalEvery = e.Iterations, e.Iterations
	cfg.VAT = t.vat // selectEps copies it per candidate
	all, err := selectEps(ctx, t.model.clone, labeled, unlabeled, cfg, e.Grid, e.Holdout, t.cfg.Seed)
	if err != nil {
		return fmt.Errorf("vat: SemiTrainer.Fit: choosing ε (SemiSupervisedConfig.EpsSearch): %w", err)
	}
	t.epsChoices = all
	t.vat.EpsScale = chosenScale(all, e.Grid)
	return nil
}

// EpsChoices returns the candidates of the ε search (EpsSearch) with their
// held-out results, the chosen one marked, in the grid's order: empty
// before the first Fit, when ε was fixed or the search off, and when too
// few labels could be held out to run it.
func (t *SemiTrainer) EpsChoices() []EpsChoice { return slices.Clone(t.epsChoices) }

// checkChoices validates the ε search's candidates read from a checkpoint.
func checkChoices(all []EpsChoice) error {
	chosen := 0
	for i, c := range all {
		switch {
		case !(c.EpsScale > 0 && c.EpsScale <= 10), !(c.Eps > 0) || math.IsInf(c.Eps, 0):
			return fmt.Errorf("ε candidate %d: EpsScale %v, Eps %v: want a scale in (0, 10] and a finite ε > 0", i+1, c.EpsScale, c.Eps)
		case !(c.Accuracy >= 0 && c.Accuracy <= 1), !(c.Loss >= 0) || math.IsInf(c.Loss, 0):
			return fmt.Errorf("ε candidate %d: accuracy %v, loss %v: want a fraction and a finite loss >= 0", i+1, c.Accuracy, c.Loss)
		}
		if c.Chosen {
			chosen++
		}
	}
	if len(all) > 0 && chosen != 1 {
		return fmt.Errorf("%d ε candidates chosen of %d: want one", chosen, len(all))
	}
	return nil
}
