package vat

import (
	"context"
	"fmt"
	"math"
)

// EpsChoice is one candidate of SelectEps: the EpsScale tried, the ε it
// gave on the data, and the accuracy on the held-out labeled samples.
type EpsChoice struct {
	EpsScale, Eps, Accuracy float64
}

// SelectEps chooses VAT's EpsScale from the labeled samples alone, so that
// nothing is tuned on the test set. It holds out valFrac of each class of
// labeled (Dataset.SplitByClass with seed; at least one sample per class
// with two or more), and for each scale of grid trains a fresh model from
// newModel with cfg on the rest of the labeled samples and all of
// unlabeled, then measures its accuracy on the held-out ones. It returns
// the scale with the best accuracy (the smaller on a tie: the milder
// regularizer) and every candidate's figures. cfg.VAT's other settings are
// kept (nil means VATConfig{}); its Eps must be 0. A nil grid means
// {0.02, 0.05, 0.1, 0.2}; valFrac 0 means 0.3. With few labels the
// held-out accuracy is noisy: prefer the default unless a candidate is
// clearly better. ctx cancels the search.
func SelectEps(ctx context.Context, newModel func() (*Model, error), labeled, unlabeled *Dataset, cfg SemiSupervisedConfig,
	grid []float64, valFrac float64, seed uint64) (best float64, all []EpsChoice, err error) {
	if grid == nil {
		grid = []float64{0.02, 0.05, 0.1, 0.2}
	}
	if valFrac == 0 {
		valFrac = 0.3
	}
	switch {
	case newModel == nil:
		return 0, nil, fmt.Errorf("vat: SelectEps: newModel is nil")
	case len(grid) == 0:
		return 0, nil, fmt.Errorf("vat: SelectEps: an empty grid")
	case cfg.VAT != nil && cfg.VAT.Eps != 0:
		return 0, nil, fmt.Errorf("vat: SelectEps: SemiSupervisedConfig.VAT.Eps = %v: want 0 (SelectEps sets EpsScale)", cfg.VAT.Eps)
	case cfg.EarlyStop.needsTest():
		return 0, nil, fmt.Errorf("vat: SelectEps: SemiSupervisedConfig.EarlyStop watches %v, which needs a test set", cfg.EarlyStop.Metric)
	}
	for i, s := range grid {
		if !(s > 0 && s <= 10) {
			return 0, nil, fmt.Errorf("vat: SelectEps: grid[%d] = %v: want a scale in (0, 10]", i, s)
		}
	}
	train, val, err := labeled.SplitByClass(valFrac, seed)
	if err != nil {
		return 0, nil, fmt.Errorf("vat: SelectEps: %w", err)
	}
	bestAcc := math.Inf(-1)
	for _, s := range grid {
		m, err := newModel()
		if err != nil {
			return 0, all, fmt.Errorf("vat: SelectEps: newModel: %w", err)
		}
		c := cfg
		v := VATConfig{}
		if cfg.VAT != nil {
			v = *cfg.VAT
		}
		v.EpsScale = s
		c.VAT = &v
		tr, err := NewSemiTrainer(m, c)
		if err != nil {
			return 0, all, err
		}
		if _, err := tr.Fit(ctx, train, unlabeled, nil); err != nil {
			return 0, all, fmt.Errorf("vat: SelectEps: EpsScale %g: %w", s, err)
		}
		ev, err := m.Evaluate(val)
		if err != nil {
			return 0, all, err
		}
		all = append(all, EpsChoice{EpsScale: s, Eps: tr.Config().VAT.Eps, Accuracy: ev.Accuracy})
		if ev.Accuracy > bestAcc || (ev.Accuracy == bestAcc && s < best) {
			best, bestAcc = s, ev.Accuracy
		}
	}
	return best, all, nil
}
