package vat

import (
	"fmt"
	"math"
	"slices"
)

// alignWindow is the number of steps over which distribution alignment's
// running mean prediction p̄ averages (ReMixMatch's 128 batches), as an
// exponential average with rate 1/alignWindow.
const alignWindow = 128

// minAlignMean bounds p̄ from below in the shift log π − log p̄, so that a
// class the model no longer predicts at all gets a large finite weight.
const minAlignMean = 1e-6

// alignment is the state of SemiSupervisedConfig.Align: the prior π (the
// labeled class frequencies) and the running mean p̄ of the unlabeled
// batches' clean predictions, which starts at π. Before each step the
// aligned divergence's shift is set from it; after the step the batch's
// mean prediction moves it:
//
//	s_j = log π_j − log max(p̄_j, 1e-6)
//	p̄ ← p̄ + (batch mean − p̄) / 128
type alignment struct {
	prior, mean []float64
}

func newAlignment(prior []float64) *alignment {
	return &alignment{prior: prior, mean: slices.Clone(prior)}
}

// shift fills s with log π − log p̄.
func (a *alignment) shift(s []float64) {
	for j, p := range a.prior {
		s[j] = math.Log(p) - math.Log(max(a.mean[j], minAlignMean))
	}
}

// observe moves p̄ towards a batch's mean prediction.
func (a *alignment) observe(batch []float64) {
	for j, b := range batch {
		a.mean[j] += (b - a.mean[j]) / alignWindow
	}
}

// restore sets p̄ from a checkpoint, which must hold one probability per
// class.
func (a *alignment) restore(mean []float64) error {
	if len(mean) != len(a.prior) {
		return fmt.Errorf("align_mean has %d classes, want %d", len(mean), len(a.prior))
	}
	for j, m := range mean {
		if !(m >= 0 && m <= 1) {
			return fmt.Errorf("align_mean[%d] = %v: want a probability", j, m)
		}
	}
	copy(a.mean, mean)
	return nil
}
