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
// unlabeled, then classifies the held-out ones. cfg.VAT's other settings
// are kept (nil means VATConfig{}); its Eps must be 0. A nil grid means
// {0.02, 0.05, 0.1, 0.2}; valFrac 0 means 0.3. ctx cancels the search.
//
// The default scale (0.05; the smallest of grid if grid lacks it) is kept
// unless another scale is significantly better on the held-out samples:
// of the samples the two classify differently, the other must be right on
// so many more that a fair coin would do as well with probability under
// 5 % (a one-sided sign test: McNemar's exact test). Of the scales that
// pass, the one with the most held-out samples right wins (the smaller on
// a tie). With a few held-out samples a one-sample lead is noise: taking
// the highest held-out accuracy as such picked, on the 20-D blobs with 9
// held-out samples, a scale that then ended 9 points below supervised
// training (2026-12-03, docs/defaults/select.md). It returns the scale
// chosen and every candidate's figures, in grid's order.
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
	right := make([][]bool, len(grid)) // right[c][i]: candidate c classifies held-out sample i correctly
	for c, s := range grid {
		m, err := newModel()
		if err != nil {
			return 0, all, fmt.Errorf("vat: SelectEps: newModel: %w", err)
		}
		cc := cfg
		v := VATConfig{}
		if cfg.VAT != nil {
			v = *cfg.VAT
		}
		v.EpsScale = s
		cc.VAT = &v
		tr, err := NewSemiTrainer(m, cc)
		if err != nil {
			return 0, all, err
		}
		if _, err := tr.Fit(ctx, train, unlabeled, nil); err != nil {
			return 0, all, fmt.Errorf("vat: SelectEps: EpsScale %g: %w", s, err)
		}
		pred, err := m.Predict(val.Images)
		if err != nil {
			return 0, all, fmt.Errorf("vat: SelectEps: EpsScale %g: %w", s, err)
		}
		right[c] = make([]bool, len(pred))
		n := 0
		for i, p := range pred {
			if p == val.Labels[i] {
				right[c][i] = true
				n++
			}
		}
		all = append(all, EpsChoice{EpsScale: s, Eps: tr.Config().VAT.Eps, Accuracy: float64(n) / float64(len(pred))})
	}
	return grid[pickScale(grid, right, 0.05)], all, nil
}

// pickScale returns the index of SelectEps' choice among grid's scales,
// given which held-out samples each classifies correctly: the anchor (the
// default scale if grid has it, else the smallest), unless some other
// scales beat it in a one-sided sign test at level alpha; then the one of
// those with the most held-out samples right (the smaller on a tie).
func pickScale(grid []float64, right [][]bool, alpha float64) int {
	anchor := 0
	for i, s := range grid {
		if s == defaultEpsScale {
			anchor = i
			break
		}
		if s < grid[anchor] {
			anchor = i
		}
	}
	count := func(c int) int {
		n := 0
		for _, r := range right[c] {
			if r {
				n++
			}
		}
		return n
	}
	best := anchor
	for c := range grid {
		if c == anchor {
			continue
		}
		wins, losses := 0, 0
		for i := range right[c] {
			switch {
			case right[c][i] && !right[anchor][i]:
				wins++
			case !right[c][i] && right[anchor][i]:
				losses++
			}
		}
		if signTail(wins, wins+losses) >= alpha {
			continue
		}
		if best == anchor || count(c) > count(best) || (count(c) == count(best) && grid[c] < grid[best]) {
			best = c
		}
	}
	return best
}

// signTail is P(X >= k) for X ~ Binomial(n, 1/2): the chance that a fair
// coin wins at least k of n tosses. It is 1 for k <= 0.
func signTail(k, n int) float64 {
	if k <= 0 {
		return 1
	}
	if k > n {
		return 0
	}
	// Σ_{j=k}^{n} C(n, j) 2^-n, each term from log-gamma so that n in the
	// thousands neither overflows nor underflows to a wrong sum.
	lgn, _ := math.Lgamma(float64(n + 1))
	p := 0.0
	for j := k; j <= n; j++ {
		lj, _ := math.Lgamma(float64(j + 1))
		lnj, _ := math.Lgamma(float64(n - j + 1))
		p += math.Exp(lgn - lj - lnj - float64(n)*math.Ln2)
	}
	return math.Min(1, p)
}
